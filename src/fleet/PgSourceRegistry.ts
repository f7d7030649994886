/**
 * The source registry in PostgreSQL (`tidemark.fleet_sources`), on the main
 * pool. A spec that no longer decodes fails reading that source with
 * `UnreadableSpec`, naming it, instead of passing a half-read spec to a worker.
 */
import { Effect, Either, Layer, Option, ParseResult } from "effect"
import { MainDb } from "../db/Database.js"
import { wrapSql } from "../db/StoreError.js"
import * as SourceSpec from "./SourceSpec.js"
import { type RecordedSource, SourceExists, SourceRegistry, UnreadableSpec } from "./SourceRegistry.js"

const store = "source registry"

interface Row {
  readonly name: string
  readonly spec: unknown
  readonly schedule: string | null
  readonly created_at: Date
}

const recorded = (row: Row): Effect.Effect<RecordedSource, UnreadableSpec> =>
  Either.match(SourceSpec.decode(row.spec), {
    onLeft: (error) =>
      Effect.fail(new UnreadableSpec({ name: row.name, reason: ParseResult.TreeFormatter.formatErrorSync(error) })),
    onRight: (spec) => Effect.succeed({ name: row.name, spec, schedule: row.schedule, createdAt: row.created_at })
  })

export const layer = Layer.effect(
  SourceRegistry,
  Effect.map(MainDb, ({ sql }) =>
    SourceRegistry.of({
      add: (source, options) => {
        const spec = JSON.stringify(SourceSpec.encode(source.spec))
        const insert =
          options?.replace === true
            ? sql<{ name: string }>`
                INSERT INTO tidemark.fleet_sources (name, kind, location, spec, schedule)
                VALUES (${source.name}, ${source.spec.kind}, ${source.spec.location}, ${spec}::jsonb, ${source.schedule})
                ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, location = excluded.location,
                  spec = excluded.spec, schedule = excluded.schedule, updated_at = now()
                RETURNING name`
            : sql<{ name: string }>`
                INSERT INTO tidemark.fleet_sources (name, kind, location, spec, schedule)
                VALUES (${source.name}, ${source.spec.kind}, ${source.spec.location}, ${spec}::jsonb, ${source.schedule})
                ON CONFLICT (name) DO NOTHING
                RETURNING name`
        return insert.pipe(
          wrapSql(store, "add"),
          Effect.flatMap((rows) =>
            rows.length === 0 ? Effect.fail(new SourceExists({ name: source.name })) : Effect.void
          )
        )
      },
      get: (name) =>
        sql<Row>`SELECT name, spec, schedule, created_at FROM tidemark.fleet_sources WHERE name = ${name}`.pipe(
          wrapSql(store, "get"),
          Effect.flatMap((rows) =>
            rows[0] === undefined ? Effect.succeedNone : Effect.map(recorded(rows[0]), Option.some)
          )
        ),
      list: sql<Row>`SELECT name, spec, schedule, created_at FROM tidemark.fleet_sources ORDER BY name COLLATE "C"`.pipe(
        wrapSql(store, "list"),
        Effect.flatMap((rows) => Effect.forEach(rows, recorded))
      ),
      remove: (name) =>
        sql`DELETE FROM tidemark.fleet_sources WHERE name = ${name} RETURNING name`.pipe(
          wrapSql(store, "remove"),
          Effect.map((rows) => rows.length > 0)
        )
    })
  )
)
