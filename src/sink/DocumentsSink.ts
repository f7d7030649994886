/**
 * The default sink: `tidemark.documents`, one row per item with its content,
 * frontmatter and title. A batch is one MainDb transaction: the lease's fence
 * first (documents the plan found not stored are staged by a binary COPY just
 * before it), then one INSERT of the staged documents, one
 * `INSERT … SELECT FROM unnest(...) ON CONFLICT` for the others, one DELETE
 * for all deletions, the source's document count (`tidemark.sources.documents`,
 * moved by what the batch inserted and deleted) and its maintenance debt. Items it cannot store
 * (broken frontmatter) it returns, for the sync to record. The search vector
 * and the links are left to deferred maintenance, off the write path.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, Layer } from "effect"
import { BinaryRows, copyIn } from "../db/Copy.js"
import { copyOut, literal } from "../db/CopyOut.js"
import { MainDb, transaction } from "../db/Database.js"
import { documentKinds } from "../maintenance/Debt.js"
import { recordIn } from "../maintenance/PgDebtStore.js"
import { bumpIn } from "../ops/SourceCounts.js"
import { mapSqlError } from "../db/StoreError.js"
import { insufficientPrivilege, sqlStateOf, uniqueViolation } from "../db/SqlState.js"
import { textArray } from "../db/TextArray.js"
import type { ReadItem } from "../source/Source.js"
import { type Parsed, parseDocument } from "./Document.js"
import { type ItemErrorRow, Sink, SinkError } from "./Sink.js"

/** The driver's failures as the sink's own. */
const asSinkError = (operation: string) => mapSqlError((cause) => new SinkError({ operation, cause }))

/** An item with what the sink derives from it (beside it: spreading both into one object cost ~1 µs an item). */
interface DocumentRow extends Parsed {
  readonly item: ReadItem
}

const copiedColumns = "source_id, key, version, source_version, size, mtime, content, frontmatter, title"

/**
 * New documents are copied into a session-private table first, before the
 * batch takes its fence. A COPY waits on the client for its data, and no
 * server timeout ends that wait (only termination does): a holder frozen in
 * the middle of one must hold nothing a successor needs, neither the lease
 * row nor the keys it is inserting. From there one server-side INSERT moves
 * them, under the fence, with the idle bound in force.
 */
const createIncoming = `CREATE TEMP TABLE IF NOT EXISTS tidemark_incoming
  (LIKE tidemark.documents INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`
const copyIncoming = `COPY pg_temp.tidemark_incoming (${copiedColumns}) FROM STDIN (FORMAT binary)`
const moveIncoming = `INSERT INTO tidemark.documents (${copiedColumns})
  SELECT ${copiedColumns} FROM pg_temp.tidemark_incoming`

/** Bytes per row besides its strings: the field count, nine lengths, two 8-byte values, jsonb's version. */
const rowOverhead = 2 + 9 * 4 + 16 + 1

const encodeDocuments = (sourceId: string, documents: ReadonlyArray<DocumentRow>) => {
  const frontmatter = documents.map((d) => (d.frontmatter === null ? null : JSON.stringify(d.frontmatter)))
  let expected = 0
  documents.forEach((d, i) => {
    // Exact for ASCII text; the rows grow into further buffers otherwise.
    expected += rowOverhead + sourceId.length + d.item.key.length + d.item.contentHash.length + d.item.version.length
    expected += d.item.content.byteLength + (frontmatter[i]?.length ?? 0) + d.title.length
  })
  const rows = new BinaryRows(expected)
  documents.forEach((d, i) => {
    rows.row(9)
    rows.text(sourceId)
    rows.text(d.item.key)
    rows.text(d.item.contentHash)
    rows.text(d.item.version)
    rows.int8(d.item.size)
    rows.timestamptz(d.item.mtime)
    rows.utf8(d.item.content)
    rows.jsonb(frontmatter[i] ?? null)
    rows.text(d.title)
  })
  return rows
}

export const layer = Layer.effect(
  Sink,
  Effect.map(MainDb, ({ sql }) => {
    // Once the server refuses the staging table, new documents are upserted like the others.
    let stagingRefused = false

    // Returns how many rows it inserted (not updated): a row inserted by this statement has no xmax.
    const upsert = (sourceId: string, documents: ReadonlyArray<DocumentRow>) =>
      sql<{ inserted: string }>`
      WITH w AS (
      INSERT INTO tidemark.documents AS d
        (source_id, key, version, source_version, size, mtime, content, frontmatter, title, imported_at)
      SELECT ${sourceId}, k, v, sv, s, m, c, f::jsonb, t, now()
        FROM unnest(
          ${textArray(documents.map((d) => d.item.key))}::text[],
          ${textArray(documents.map((d) => d.item.contentHash))}::text[],
          ${textArray(documents.map((d) => d.item.version))}::text[], ${documents.map((d) => d.item.size)}::bigint[],
          ${documents.map((d) => d.item.mtime?.toISOString() ?? null)}::timestamptz[],
          ${textArray(documents.map((d) => d.item.content))}::text[],
          ${textArray(documents.map((d) => (d.frontmatter === null ? null : JSON.stringify(d.frontmatter))))}::text[],
          ${textArray(documents.map((d) => d.title))}::text[]
        ) AS u(k, v, sv, s, m, c, f, t)
      ON CONFLICT (source_id, key) DO UPDATE SET
        version = excluded.version, source_version = excluded.source_version, size = excluded.size,
        mtime = excluded.mtime, content = excluded.content, frontmatter = excluded.frontmatter,
        title = excluded.title, tsv = NULL, links_version = NULL, imported_at = excluded.imported_at
      RETURNING (xmax = 0) AS inserted)
      SELECT count(*) FILTER (WHERE inserted) AS inserted FROM w`.pipe(Effect.map((rows) => Number(rows[0]!.inserted)))

    return Sink.of({
      name: "documents",
      noun: "documents",
      // The lookups go through the primary keys whatever the planner's statistics say
      // (right after a bulk import they are stale, and a join would scan the source).
      differing: (sourceId, items) =>
        Effect.map(
          sql<{ at: number; stored: string | null }>`
            WITH u AS MATERIALIZED (
                   SELECT * FROM unnest(${textArray(items.map((i) => i.key))}::text[], ${textArray(items.map((i) => i.version))}::text[])
                     WITH ORDINALITY AS u(key, version, at)),
                 d AS MATERIALIZED (
                   SELECT key, source_version FROM tidemark.documents
                    WHERE source_id = ${sourceId} AND key = ANY(ARRAY(SELECT key FROM u)))
            SELECT u.at::int4 AS at, d.source_version AS stored
              FROM u LEFT JOIN d USING (key)
             WHERE d.source_version IS DISTINCT FROM u.version`,
          (rows) => rows.map((row) => ({ item: items[row.at - 1]!, stored: row.stored }))
        ).pipe(asSinkError("look up stored versions")),
      // One COPY of every (key, version) of the source, in the primary key's order, instead of
      // a lookup per batch of 1,000 (BENCHMARKS.md §Speed). In a transaction: the COPY needs the
      // connection to itself until it ends.
      storedVersions: (sourceId) =>
        Effect.suspend(() => {
          const versions = new Map<string, string | null>()
          return transaction(sql)(
            copyOut(
              `COPY (SELECT key, source_version FROM tidemark.documents WHERE source_id = ${literal(sourceId)} ORDER BY key) TO STDOUT (FORMAT binary)`,
              ([key, version]) => versions.set(key!, version ?? null)
            )
          ).pipe(Effect.as(versions))
        }).pipe(asSinkError("read stored versions")),
      // The count this sink keeps in the source's row with each write (migration 0009), not a
      // count(*) that reads every key of the source at each sync.
      count: (sourceId) =>
        Effect.map(sql<{ documents: string }>`SELECT documents FROM tidemark.sources WHERE id = ${sourceId}`, (rows) =>
          Number(rows[0]?.documents ?? 0)
        ).pipe(asSinkError("count documents")),
      keysAfter: (sourceId, after, limit) =>
        Effect.map(
          sql<{ key: string }>`
            SELECT key FROM tidemark.documents WHERE source_id = ${sourceId} AND key > ${after} ORDER BY key LIMIT ${limit}`,
          (rows) => rows.map((r) => r.key)
        ).pipe(asSinkError("list stored keys")),
      write: (sourceId, batch, fence) => {
        const rejected: Array<ItemErrorRow> = []
        const documents = batch.items.flatMap((item) => {
          const parsed = parseDocument(item.key, item.content)
          if (Either.isLeft(parsed)) {
            rejected.push({ key: item.key, version: item.version, error: parsed.left })
            return []
          }
          return [{ item, frontmatter: parsed.right.frontmatter, title: parsed.right.title }]
        })
        const unstored = batch.unstored ?? new Set<string>()
        const attempt = (copyUnstored: boolean) =>
          transaction(sql)(
            Effect.gen(function* () {
              const copied = copyUnstored ? documents.filter((d) => unstored.has(d.item.key)) : []
              const upserted = copied.length === 0 ? documents : documents.filter((d) => !unstored.has(d.item.key))
              if (copied.length > 0) {
                yield* sql.unsafe(createIncoming)
                yield* copyIn(copyIncoming, encodeDocuments(sourceId, copied))
              }
              yield* fence
              // The commit does not wait for its WAL flush (waiting cost 10-30% of a first
              // import). A server crash can then take back the last of these commits, even
              // ones whose items a checkpoint flush, retried on the restarted server, has
              // banked since. The plan skips a banked item only where the sink shows it
              // done, so a lost batch is redone by the resumed or the next sync.
              yield* sql`SET LOCAL synchronous_commit = off`
              // Every staged row is inserted (a key that exists fails the batch, redone as upserts).
              if (copied.length > 0) yield* sql.unsafe(moveIncoming)
              const inserted = upserted.length > 0 ? yield* upsert(sourceId, upserted) : 0
              const deleted =
                batch.deletes.length > 0
                  ? yield* sql<{ n: string }>`
                      WITH d AS (DELETE FROM tidemark.documents
                                  WHERE source_id = ${sourceId} AND key = ANY(${textArray(batch.deletes)}::text[]) RETURNING 1)
                      SELECT count(*) AS n FROM d`.pipe(Effect.map((rows) => Number(rows[0]!.n)))
                  : 0
              yield* bumpIn(sql, sourceId, "documents", copied.length + inserted - deleted)
              // What the change owes (search vectors, links, statistics), in its own transaction:
              // last, so that the debt row is locked only until the commit.
              if (documents.length > 0 || batch.deletes.length > 0)
                yield* recordIn(sql, sourceId, documentKinds, documents.length + batch.deletes.length)
              return rejected
            })
          )
        // The batch is redone as upserts when a key the plan found not stored exists after
        // all (nothing else writes under the lease, so this should not happen), or when the
        // role may not create the staging table.
        const staged = unstored.size > 0 && !stagingRefused
        const redoable = (error: unknown): error is SqlError =>
          staged && (sqlStateOf(error) === uniqueViolation || sqlStateOf(error) === insufficientPrivilege)
        return attempt(staged).pipe(
          Effect.catchIf(redoable, (error) =>
            sqlStateOf(error) === insufficientPrivilege
              ? Effect.zipRight(
                  Effect.logWarning(
                    `new documents are upserted instead of copied in (slower): ${error.cause instanceof Error ? error.cause.message : error.message}`
                  ),
                  Effect.suspend(() => {
                    stagingRefused = true
                    return attempt(false)
                  })
                )
              : attempt(false)
          ),
          asSinkError("write a batch")
        )
      }
    })
  })
)
