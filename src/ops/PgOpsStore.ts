/**
 * Sources and ops in PostgreSQL (`tidemark.sources`, `tidemark.ops`), on the
 * main pool: each write is one transaction that begins with the lease's fence,
 * which runs on the same connection. Finishing also drops the op's banked items;
 * removing a source deletes every row tidemark keeps of it, table by table.
 */
import { Effect, Layer } from "effect"
import { MainDb, transaction } from "../db/Database.js"
import { wrapSql } from "../db/StoreError.js"
import { recordIn } from "../maintenance/PgDebtStore.js"
import {
  type OpenOp,
  OpsStore,
  pinned,
  SourceConflict,
  type SourceContents,
  UnknownSearchConfig,
  UnknownSource
} from "./OpsStore.js"

const store = "ops store"

/** The tables of a source's rows besides its own, by the count they make up, each with its condition. */
const ofSource = [
  // Links first: they may be tied to their documents (and go with them otherwise).
  ["links", "tidemark.link_refs", "source_id = $1"],
  ["links", "tidemark.link_names", "source_id = $1"],
  ["documents", "tidemark.documents", "source_id = $1"],
  ["entries", "tidemark.entries", "source_id = $1"],
  ["jsonlFiles", "tidemark.jsonl_files", "source_id = $1"],
  // Banked items first: they are found through the ops.
  ["bankedItems", "tidemark.op_items", "op_id IN (SELECT id FROM tidemark.ops WHERE source_id = $1)"],
  ["ops", "tidemark.ops", "source_id = $1"],
  ["itemErrors", "tidemark.item_errors", "source_id = $1"],
  ["runState", "tidemark.run_state", "source_id = $1"],
  ["maintenanceDebt", "tidemark.maintenance_debt", "source_id = $1"]
] as const

type Counted = Omit<SourceContents, "kind" | "root" | "sink">

const noRows: Counted = {
  documents: 0,
  entries: 0,
  jsonlFiles: 0,
  ops: 0,
  bankedItems: 0,
  itemErrors: 0,
  runState: 0,
  maintenanceDebt: 0,
  links: 0
}

export const layer = Layer.effect(
  OpsStore,
  Effect.map(MainDb, ({ sql }) => {
    const fenced =
      (operation: string) =>
      <A, E, E2, R>(fence: Effect.Effect<void, E>, work: Effect.Effect<A, E2, R>) =>
        transaction(sql)(Effect.zipRight(fence, work)).pipe(wrapSql(store, operation))

    return OpsStore.of({
      ensureSource: (source, fence) =>
        fenced("record the source")(
          fence,
          Effect.gen(function* () {
            const [row] = yield* sql<{ kind: string; root: string; search_config: string | null }>`
              INSERT INTO tidemark.sources AS s (id, kind, root, sink)
              VALUES (${source.id}, ${source.kind}, ${source.root}, ${source.sink})
              ON CONFLICT (id) DO UPDATE SET sink = excluded.sink, updated_at = now()
              RETURNING kind, root, options->>'searchConfig' AS search_config`
            if (row !== undefined && (row.kind !== source.kind || row.root !== source.root)) {
              return yield* new SourceConflict({ sourceId: source.id, existingRoot: row.root, existingKind: row.kind })
            }
            const config = source.searchConfig
            if (config !== undefined && (row?.search_config ?? "simple") !== config) {
              const [known] = yield* sql<{ ok: boolean }>`SELECT to_regconfig(${config}) IS NOT NULL AS ok`
              if (!known?.ok) return yield* new UnknownSearchConfig({ name: config })
              yield* sql`UPDATE tidemark.sources SET options = options || jsonb_build_object('searchConfig', ${config}::text) WHERE id = ${source.id}`
              // Every vector was made with the old configuration: they are made again.
              yield* sql`UPDATE tidemark.documents SET tsv = NULL WHERE source_id = ${source.id} AND tsv IS NOT NULL`
              yield* recordIn(sql, source.id, ["search"])
            }
          })
        ),
      openOrResume: (sourceId, token, fence) =>
        fenced("open or resume the op")(
          fence,
          Effect.gen(function* () {
            const [open] = yield* sql<{ id: string; banked: string; restarts: number; base: unknown; target: unknown }>`
              UPDATE tidemark.ops SET restarts = restarts + 1, fencing_token = ${token}, updated_at = now()
               WHERE source_id = ${sourceId} AND status = 'open'
              RETURNING id, banked, restarts, base, target`
            if (open !== undefined) {
              return {
                id: Number(open.id),
                banked: Number(open.banked),
                restarts: open.restarts,
                resumed: true,
                base: open.base,
                target: pinned(open.target)
              } satisfies OpenOp
            }
            const [created] = yield* sql<{ id: string; base: unknown }>`
              INSERT INTO tidemark.ops (source_id, base, target, fencing_token)
              SELECT ${sourceId}, watermark, '{}'::jsonb, ${token} FROM tidemark.sources WHERE id = ${sourceId}
              RETURNING id, base`
            return {
              id: Number(created!.id),
              banked: 0,
              restarts: 0,
              resumed: false,
              base: created!.base,
              target: null
            } satisfies OpenOp
          })
        ),
      recordTarget: (opId, target, fence) =>
        fenced("pin the op's target")(
          fence,
          Effect.asVoid(
            sql`UPDATE tidemark.ops SET target = ${JSON.stringify(target)}::jsonb, updated_at = now() WHERE id = ${opId}`
          )
        ),
      recordPlanned: (opId, planned, fence) =>
        fenced("record the plan")(
          fence,
          Effect.asVoid(sql`UPDATE tidemark.ops SET planned = ${planned}, updated_at = now() WHERE id = ${opId}`)
        ),
      finish: (sourceId, opId, watermark, fence) =>
        fenced("finish the op")(
          fence,
          Effect.gen(function* () {
            yield* sql`UPDATE tidemark.sources SET watermark = ${JSON.stringify(watermark)}::jsonb, updated_at = now() WHERE id = ${sourceId}`
            yield* sql`UPDATE tidemark.ops SET status = 'done', completed_at = now(), updated_at = now() WHERE id = ${opId}`
            yield* sql`DELETE FROM tidemark.op_items WHERE op_id = ${opId}`
            // A closed op is purged later, with the others: debt of its own kind.
            yield* recordIn(sql, sourceId, ["purge"])
          })
        ),
      watermarkOf: (sourceId) =>
        sql<{ watermark: unknown }>`SELECT watermark FROM tidemark.sources WHERE id = ${sourceId}`.pipe(
          Effect.map((rows) => rows[0]?.watermark ?? null),
          wrapSql(store, "read the watermark")
        ),
      contentsOf: (sourceId) =>
        Effect.gen(function* () {
          const [source] = yield* sql<{ kind: string; root: string; sink: string }>`
            SELECT kind, root, sink FROM tidemark.sources WHERE id = ${sourceId}`
          if (source === undefined) return yield* new UnknownSource({ sourceId })
          const [row] = yield* sql.unsafe<Record<string, string>>(
            `SELECT ${ofSource.map(([, table, where], i) => `(SELECT count(*) FROM ${table} WHERE ${where}) AS c${i}`).join(", ")}`,
            [sourceId]
          )
          const counts = ofSource.reduce<Counted>(
            (sum, [name], i) => ({ ...sum, [name]: sum[name] + Number(row![`c${i}`]) }),
            noRows
          )
          return { ...source, ...counts }
        }).pipe(wrapSql(store, "count what the source has")),
      removeSource: (sourceId, fence) =>
        fenced("remove the source")(
          fence,
          Effect.gen(function* () {
            const [source] = yield* sql<{ kind: string; root: string; sink: string }>`
              SELECT kind, root, sink FROM tidemark.sources WHERE id = ${sourceId} FOR UPDATE`
            if (source === undefined) return yield* new UnknownSource({ sourceId })
            let counts = noRows
            for (const [name, table, where] of ofSource) {
              const [deleted] = yield* sql.unsafe<{ n: string }>(
                `WITH d AS (DELETE FROM ${table} WHERE ${where} RETURNING 1) SELECT count(*) AS n FROM d`,
                [sourceId]
              )
              counts = { ...counts, [name]: counts[name] + Number(deleted!.n) }
            }
            yield* sql`DELETE FROM tidemark.sources WHERE id = ${sourceId}`
            return { ...source, ...counts } satisfies SourceContents
          })
        )
    })
  })
)
