/**
 * A program of one's own that syncs a folder of notes into a table of its own
 * (`app_notes`) through tidemark: resumable after a crash, one sync at a time,
 * every write fenced by the lease, and files it cannot store recorded as
 * tidemark's item errors — by the sync; the sink only says which and why.
 *
 *   DATABASE_URL=postgresql://… node custom-sink.js ./notes
 *
 * (Without DATABASE_URL it uses tidemark's embedded server.) One table for one
 * source: the sink ignores the source id.
 */
import { Effect, Layer } from "effect"
import { Database, DbSettings, DirSource, Sink, Source, StoreError, SyncProgram, Tidemark } from "tidemark"
import { pathToFileURL } from "node:url"

/** The program's own table. */
export const createTable = Effect.flatMap(
  Database.MainDb,
  ({ sql }) =>
    sql`CREATE TABLE IF NOT EXISTS app_notes (path text PRIMARY KEY, version text NOT NULL, body text NOT NULL)`
)

const failed = (operation: string) => StoreError.mapSqlError((cause) => new Sink.SinkError({ operation, cause }))

/** Notes go to `app_notes`; an empty note is refused, and the sync records it as an item error. */
export const NotesSink = Layer.effect(
  Sink.Sink,
  Effect.map(Database.MainDb, ({ sql }) =>
    Sink.Sink.of({
      name: "app_notes",
      noun: "notes",
      differing: (_sourceId, items) =>
        sql<{ path: string; version: string }>`
          SELECT path, version FROM app_notes WHERE path IN ${sql.in(items.map((item) => item.key))}`.pipe(
          Effect.map((rows) => {
            const stored = new Map(rows.map((row) => [row.path, row.version]))
            return items.flatMap((item) =>
              stored.get(item.key) === item.version ? [] : [{ item, stored: stored.get(item.key) ?? null }]
            )
          }),
          failed("look up notes")
        ),
      count: () =>
        sql<{ n: number }>`SELECT count(*)::int AS n FROM app_notes`.pipe(
          Effect.map((rows) => rows[0]!.n),
          failed("count notes")
        ),
      keysAfter: (_sourceId, after, limit) =>
        sql<{ path: string }>`SELECT path FROM app_notes WHERE path > ${after} ORDER BY path LIMIT ${limit}`.pipe(
          Effect.map((rows) => rows.map((row) => row.path)),
          failed("list notes")
        ),
      // One transaction, the lease's fence first: a sync that lost its lease writes nothing.
      write: (_sourceId, batch, fence) =>
        Database.transaction(sql)(
          Effect.gen(function* () {
            yield* fence
            const rejected: Array<Sink.ItemErrorRow> = []
            for (const item of batch.items) {
              const body = Source.textOf(item)
              if (body.trim() === "") {
                rejected.push({ key: item.key, version: item.version, error: "empty note" })
                continue
              }
              yield* sql`
                INSERT INTO app_notes (path, version, body) VALUES (${item.key}, ${item.version}, ${body})
                ON CONFLICT (path) DO UPDATE SET version = excluded.version, body = excluded.body`
            }
            if (batch.deletes.length > 0) yield* sql`DELETE FROM app_notes WHERE path IN ${sql.in(batch.deletes)}`
            return rejected
          })
        ).pipe(failed("write notes"))
    })
  )
)

/** The sync itself. */
export const syncNotes = (folder: string) =>
  Effect.gen(function* () {
    yield* createTable
    const source = yield* DirSource.make(folder)
    return yield* SyncProgram.run({ sourceId: "notes", source })
  }).pipe(Effect.scoped)

/** Run as a program: the database from the environment, tidemark's log lines on stderr. */
export const main = (folder: string) =>
  syncNotes(folder).pipe(
    Effect.provide(Tidemark.layerPgWith({ sink: NotesSink })),
    Effect.provide(DbSettings.layerFromEnv),
    Effect.provide(Tidemark.stderrLogger)
  )

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  Effect.runPromise(main(process.argv[2] ?? ".")).then(
    (summary) => console.log(JSON.stringify(summary)),
    (error: unknown) => {
      console.error(`custom-sink: ${error instanceof Error ? error.message : String(error)}`)
      process.exitCode = 1
    }
  )
}
