/**
 * Entries and stream checkpoints in PostgreSQL (`tidemark.entries`,
 * `tidemark.jsonl_files`), on the main pool. A write is one transaction with
 * the lease's fence in it. A COPY waits on the client, and no server timeout
 * ends that wait: a holder frozen in the middle of one must hold nothing a
 * successor needs. So a new stream's first entries are copied straight into
 * the table (its stream number is new: no successor writes those keys), and
 * an existing stream's are first copied into a session-private table, then
 * moved in after the fence, with the stream's checkpoint, its entries' moves
 * and absences, and the source's count of present entries
 * (`tidemark.sources.entries`). Batches commit without waiting for their WAL flush: a server
 * crash can take back the last one, entries and checkpoint together, and the
 * next sync reads them again.
 */
import { Effect, Layer } from "effect"
import { BinaryRows, copyIn } from "../db/Copy.js"
import { MainDb, transaction } from "../db/Database.js"
import { wrapSql } from "../db/StoreError.js"
import { textArray } from "../db/TextArray.js"
import { entryKinds } from "../maintenance/Debt.js"
import { recordIn } from "../maintenance/PgDebtStore.js"
import { bumpIn } from "../ops/SourceCounts.js"
import { type Checkpoint, EntriesStore, type NewEntry, type PathTaken, type Stream } from "./EntriesStore.js"

const store = "entries store"

/** Up to this many entries a write sends them in its INSERT (no staging table, no COPY). */
const fewEntries = 200

const columns = "source_id, stream, identity, position, byte_offset, kind, role, entry, line_hash"
const createIncoming = `CREATE TEMP TABLE IF NOT EXISTS tidemark_incoming_entries
  (LIKE tidemark.entries INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`
const copyIncoming = `COPY pg_temp.tidemark_incoming_entries (${columns}) FROM STDIN (FORMAT binary)`
const copyEntries = `COPY tidemark.entries (${columns}) FROM STDIN (FORMAT binary)`

const encode = (sourceId: string, stream: number, entries: ReadonlyArray<NewEntry>) => {
  let expected = 0
  for (const e of entries)
    expected += 80 + sourceId.length + e.identity.length + e.json.byteLength + (e.role?.length ?? 0)
  const rows = new BinaryRows(expected)
  for (const e of entries) {
    rows.row(9)
    rows.text(sourceId)
    rows.int8(stream)
    rows.text(e.identity)
    rows.int8(e.position)
    rows.int8(e.byteOffset)
    rows.text(e.kind)
    rows.text(e.role)
    rows.jsonbUtf8(e.json)
    rows.text(e.lineHash)
  }
  return rows
}

interface StreamRow {
  readonly stream: string
  readonly path: string
  readonly gone: boolean
  readonly fingerprint: string | null
  readonly device: string | null
  readonly inode: string | null
  readonly size: string
  readonly mtime_us: string
  readonly racy: boolean
  readonly processed: string
  readonly lines: string
  readonly anchor_offset: string | null
  readonly anchor_length: number | null
  readonly anchor_hash: string | null
  readonly anchor_position: string | null
  readonly tail_hashes: ReadonlyArray<string>
  readonly next_seq: string
  readonly backlog: string
  readonly backlog_cap: string | null
  readonly pending_tail: boolean
  readonly last_path: string | null
}

const nullableNumber = (value: string | null) => (value === null ? null : Number(value))

const toStream = (r: StreamRow): Stream => ({
  stream: Number(r.stream),
  path: r.path,
  gone: r.gone,
  fingerprint: r.fingerprint,
  device: nullableNumber(r.device),
  inode: nullableNumber(r.inode),
  size: Number(r.size),
  mtimeUs: Number(r.mtime_us),
  racy: r.racy,
  processed: Number(r.processed),
  lines: Number(r.lines),
  anchor:
    r.anchor_offset === null || r.anchor_hash === null
      ? null
      : {
          offset: Number(r.anchor_offset),
          length: r.anchor_length ?? 0,
          hash: r.anchor_hash,
          position: Number(r.anchor_position ?? 0)
        },
  tailHashes: r.tail_hashes,
  nextSeq: Number(r.next_seq),
  backlog: Number(r.backlog),
  backlogCap: nullableNumber(r.backlog_cap),
  pendingTail: r.pending_tail,
  lastPath: r.last_path as PathTaken | null
})

export const layer = Layer.effect(
  EntriesStore,
  Effect.map(MainDb, ({ sql }) => {
    const saveCheckpoint = (sourceId: string, stream: number | null, c: Checkpoint) => {
      const values = {
        path: c.path,
        gone: c.gone,
        fingerprint: c.fingerprint,
        device: c.device,
        inode: c.inode,
        size: c.size,
        mtime_us: c.mtimeUs,
        racy: c.racy,
        processed: c.processed,
        lines: c.lines,
        anchor_offset: c.anchor?.offset ?? null,
        anchor_length: c.anchor?.length ?? null,
        anchor_hash: c.anchor?.hash ?? null,
        anchor_position: c.anchor?.position ?? null,
        tail_hashes: [...c.tailHashes],
        next_seq: c.nextSeq,
        backlog: c.backlog,
        backlog_cap: c.backlogCap,
        pending_tail: c.pendingTail,
        last_path: c.lastPath
      }
      return stream === null
        ? Effect.map(
            sql<{
              stream: string
            }>`INSERT INTO tidemark.jsonl_files ${sql.insert({ source_id: sourceId, ...values })} RETURNING stream`,
            (rows) => Number(rows[0]!.stream)
          )
        : Effect.as(
            sql`UPDATE tidemark.jsonl_files SET ${sql.update(values)}, updated_at = now()
                 WHERE source_id = ${sourceId} AND stream = ${stream}`,
            stream
          )
    }

    return EntriesStore.of({
      streams: (sourceId) =>
        sql<StreamRow>`SELECT * FROM tidemark.jsonl_files WHERE source_id = ${sourceId} ORDER BY stream`.pipe(
          Effect.map((rows) => rows.map(toStream)),
          wrapSql(store, "read the file checkpoints")
        ),
      // In file order; the primary key finds the stream's entries, and a stream's are few enough to sort.
      present: (sourceId, stream) =>
        sql<{ identity: string; position: string; line_hash: string }>`
          SELECT identity, position, line_hash FROM tidemark.entries
           WHERE source_id = ${sourceId} AND stream = ${stream} AND present
           ORDER BY position`.pipe(
          Effect.map((rows) =>
            rows.map((r) => ({ identity: r.identity, position: Number(r.position), lineHash: r.line_hash }))
          ),
          wrapSql(store, "read stored entries")
        ),
      write: (sourceId, write, fence) =>
        transaction(sql)(
          Effect.gen(function* () {
            // A new stream's entries cannot collide with anyone's (its number is new), so they are
            // copied straight in: a holder frozen in the middle holds nothing a successor needs. An
            // existing stream's are staged first, since a successor would write the same keys.
            // A few entries (a tail) go in by one INSERT after the fence instead: all its data is in
            // the statement, so it never waits on the client, and it saves the staging round trips.
            const few = write.entries.length > 0 && write.entries.length <= fewEntries
            const staged = write.stream !== null && write.entries.length > 0 && !few
            if (staged) {
              yield* sql.unsafe(createIncoming)
              yield* copyIn(copyIncoming, encode(sourceId, 0, write.entries))
            }
            const stream = yield* saveCheckpoint(sourceId, write.stream, write.checkpoint)
            if (write.stream === null && write.entries.length > 0 && !few) {
              yield* copyIn(copyEntries, encode(sourceId, stream, write.entries))
            }
            yield* fence
            yield* sql`SET LOCAL synchronous_commit = off`
            const moved = write.moved ?? []
            const absent = write.absent ?? []
            const mayExist = write.entries.some((e) => !e.identity.startsWith("#"))
            // The entries whose presence this write may change besides the new ones: their present
            // count before and after moves the source's count. Numbered entries are new by
            // construction (their numbers come from the checkpoint written with them), and so is
            // every entry of a new stream: those count one each, with no lookup.
            const touched =
              write.stream === null
                ? []
                : [
                    ...(mayExist ? write.entries.map((e) => e.identity) : []),
                    ...moved.map((m) => m.identity),
                    ...absent
                  ]
            const presentAmong = () =>
              sql<{ n: string }>`
                SELECT count(*) AS n FROM tidemark.entries
                 WHERE source_id = ${sourceId} AND stream = ${stream} AND identity = ANY(${textArray(touched)}::text[])
                   AND present`.pipe(Effect.map((rows) => Number(rows[0]!.n)))
            const before = touched.length > 0 ? yield* presentAmong() : 0
            if (moved.length > 0) {
              yield* sql`
                UPDATE tidemark.entries AS e SET position = u.p, byte_offset = u.o, present = true
                  FROM unnest(${textArray(moved.map((m) => m.identity))}::text[], ${moved.map((m) => m.position)}::bigint[],
                              ${moved.map((m) => m.byteOffset)}::bigint[]) AS u(i, p, o)
                 WHERE e.source_id = ${sourceId} AND e.stream = ${stream} AND e.identity = u.i`
            }
            if (absent.length > 0) {
              yield* sql`
                UPDATE tidemark.entries SET present = false
                 WHERE source_id = ${sourceId} AND stream = ${stream} AND identity = ANY(${textArray(absent)}::text[])`
            }
            const onConflict = mayExist
              ? "ON CONFLICT (source_id, stream, identity) DO UPDATE SET present = true, position = excluded.position, byte_offset = excluded.byte_offset"
              : ""
            if (few) {
              const e = write.entries
              yield* sql.unsafe(
                `INSERT INTO tidemark.entries (${columns})
                 SELECT $1, $2, i, p, o, k, r, j::jsonb, h
                   FROM unnest($3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[])
                        AS u(i, p, o, k, r, j, h)
                 ${onConflict}`,
                [
                  sourceId,
                  stream,
                  textArray(e.map((x) => x.identity)),
                  e.map((x) => x.position),
                  e.map((x) => x.byteOffset),
                  textArray(e.map((x) => x.kind)),
                  textArray(e.map((x) => x.role)),
                  textArray(e.map((x) => x.json)),
                  textArray(e.map((x) => x.lineHash))
                ]
              )
            }
            if (staged) {
              // An identity met again (an --id-field entry written once more) is the same entry: it is
              // kept as first stored, and is present where it is now. Numbered entries are new by
              // construction (their numbers come from the checkpoint written with them).
              yield* sql.unsafe(
                `INSERT INTO tidemark.entries (${columns})
                 SELECT source_id, $1, identity, position, byte_offset, kind, role, entry, line_hash
                   FROM pg_temp.tidemark_incoming_entries
                 ${onConflict}`,
                [stream]
              )
            }
            const after = touched.length > 0 ? yield* presentAmong() : 0
            const counted = write.stream === null || !mayExist ? write.entries.length : 0
            yield* bumpIn(sql, sourceId, "entries", counted + after - before)
            if (write.entries.length > 0 || moved.length > 0 || absent.length > 0) {
              yield* recordIn(sql, sourceId, entryKinds, write.entries.length + moved.length + absent.length)
            }
            return stream
          })
        ).pipe(wrapSql(store, "write entries")),
      markGone: (sourceId, streams, fence) =>
        streams.length === 0
          ? Effect.void
          : transaction(sql)(
              Effect.zipRight(
                fence,
                sql`UPDATE tidemark.jsonl_files SET gone = true, updated_at = now()
                     WHERE source_id = ${sourceId} AND stream = ANY(${streams}::bigint[])`
              )
            ).pipe(Effect.asVoid, wrapSql(store, "mark files gone")),
      remove: (sourceId, streams, fence) =>
        streams.length === 0
          ? Effect.succeed(0)
          : transaction(sql)(
              Effect.gen(function* () {
                yield* fence
                const deleted = yield* sql<{ n: string; present: string }>`
                  WITH d AS (DELETE FROM tidemark.entries WHERE source_id = ${sourceId} AND stream = ANY(${streams}::bigint[]) RETURNING present)
                  SELECT count(*) AS n, count(*) FILTER (WHERE present) AS present FROM d`
                yield* sql`DELETE FROM tidemark.jsonl_files WHERE source_id = ${sourceId} AND stream = ANY(${streams}::bigint[])`
                yield* bumpIn(sql, sourceId, "entries", -Number(deleted[0]!.present))
                yield* recordIn(sql, sourceId, entryKinds, Number(deleted[0]!.n))
                return Number(deleted[0]!.n)
              })
            ).pipe(wrapSql(store, "delete files' entries")),
      count: (sourceId, stream) =>
        (stream === undefined
          ? sql<{ n: string }>`SELECT count(*) AS n FROM tidemark.entries WHERE source_id = ${sourceId} AND present`
          : sql<{ n: string }>`
              SELECT count(*) AS n FROM tidemark.entries WHERE source_id = ${sourceId} AND stream = ${stream} AND present`
        ).pipe(
          Effect.map((rows) => Number(rows[0]!.n)),
          wrapSql(store, "count entries")
        )
    })
  })
)
