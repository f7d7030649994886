/**
 * The kinds of maintenance on PostgreSQL:
 *
 *   search   the search vector of new and changed documents: title weighted
 *            above content, in the source's text search configuration
 *            (`simple` unless the source says otherwise), computed in the
 *            UPDATE itself from the row as it is then (a document changed
 *            meanwhile is left for the next payment, never given an old vector).
 *   links    Markdown and wiki links of new and changed documents, and the
 *            names a wiki link may use for them; a document's links are
 *            replaced, and marked done for the version they were read from.
 *   analyze  the statistics of the tables a source writes, when enough rows
 *            changed since the last ANALYZE (only the columns queries select on:
 *            sampling the content would cost most of it). Documents are vacuumed
 *            too: after a large change the search and links payments (paid
 *            before this kind) left a dead row and index entry per document, and
 *            the next small payment would walk them all (0.3 s at 100,000).
 *   purge    closed ops beyond the last few of each source, leftover banked
 *            items, item errors of JSONL files that are gone, the run state of a
 *            source not synced for 30 days (`status` shows the last sync's
 *            progress until then). The links of a document that goes need no
 *            purge: they cascade with it.
 */
import { Effect, Layer } from "effect"
import { MainDb } from "../db/Database.js"
import { wrapSql } from "../db/StoreError.js"
import { textArray } from "../db/TextArray.js"
import type { Kind } from "./Debt.js"
import { extractLinks, namesOf } from "./Links.js"
import { Runners } from "./Runners.js"

const store = "maintenance"
const searchBatch = 2000
const linksBatch = 500
/** Rows changed since the last ANALYZE past which statistics are refreshed. */
const analyzeAfter = 1000
/** Closed ops kept per source (the newest), for `status` and people. */
const keepOps = 10

export const layer = Layer.effect(
  Runners,
  Effect.map(MainDb, ({ sql }) => {
    const searchConfig = (sourceId: string) =>
      Effect.map(
        sql<{
          config: string | null
        }>`SELECT options->>'searchConfig' AS config FROM tidemark.sources WHERE id = ${sourceId}`,
        (rows) => rows[0]?.config ?? "simple"
      )

    const search = (sourceId: string, done: (n: number) => Effect.Effect<void>) =>
      Effect.gen(function* () {
        const config = yield* searchConfig(sourceId)
        let total = 0
        // In key order from where the last batch ended: each batch reads only its own rows of the
        // partial index `documents_search_due` (ordered, so the planner walks the index even when
        // its statistics still count the rows an earlier payment filled). A document changed
        // behind the cursor moved the revision: the rerun finds it.
        let after = ""
        for (;;) {
          // The batch's last key comes from the database: its collation orders the keys. The rows
          // are found by the primary key (`= ANY` of an array; `IN` was planned as a scan).
          const [batch] = yield* sql<{ updated: number; last: string | null }>`
            WITH batch AS (
              SELECT key FROM tidemark.documents
               WHERE source_id = ${sourceId} AND tsv IS NULL AND key > ${after}
               ORDER BY key LIMIT ${searchBatch}),
            updated AS (
              UPDATE tidemark.documents d
                 SET tsv = setweight(to_tsvector(${config}::regconfig, coalesce(d.title, '')), 'A')
                        || setweight(to_tsvector(${config}::regconfig, d.content), 'B')
               WHERE d.source_id = ${sourceId} AND d.tsv IS NULL AND d.key = ANY(ARRAY(SELECT key FROM batch))
              RETURNING 1)
            SELECT (SELECT count(*) FROM updated)::int AS updated, (SELECT max(key) FROM batch) AS last`
          if (batch === undefined || batch.last === null) return total
          total += batch.updated
          after = batch.last
          yield* done(batch.updated)
        }
      })

    const links = (sourceId: string, done: (n: number) => Effect.Effect<void>) =>
      Effect.gen(function* () {
        let total = 0
        let after = ""
        for (;;) {
          // Keyset paging through `documents_links_due`, as for search.
          const docs = yield* sql<{ key: string; version: string; title: string | null; content: string }>`
            SELECT key, version, title, content FROM tidemark.documents
             WHERE source_id = ${sourceId} AND links_version IS NULL AND key > ${after}
             ORDER BY key LIMIT ${linksBatch}`
          if (docs.length === 0) return total
          after = docs[docs.length - 1]!.key
          const allRefs = docs.flatMap((d) =>
            extractLinks(d.key, d.content).map((link, position) => ({ from: d.key, position, ...link }))
          )
          const allNames = docs.flatMap((d) => namesOf(d.key, d.title).map((name) => ({ name, key: d.key })))
          const keys = textArray(docs.map((d) => d.key))
          yield* sql.withTransaction(
            Effect.gen(function* () {
              // The documents still there, kept there until this commits (a deletion cascades to
              // their links; one that went since they were read gets none).
              const present = new Set(
                (yield* sql<{ key: string }>`
                  SELECT key FROM tidemark.documents WHERE source_id = ${sourceId} AND key = ANY(${keys}::text[])
                     FOR KEY SHARE`).map((row) => row.key)
              )
              const refs = allRefs.filter((ref) => present.has(ref.from))
              const names = allNames.filter((name) => present.has(name.key))
              yield* sql`DELETE FROM tidemark.link_refs WHERE source_id = ${sourceId} AND from_key = ANY(${keys}::text[])`
              yield* sql`DELETE FROM tidemark.link_names WHERE source_id = ${sourceId} AND key = ANY(${keys}::text[])`
              if (refs.length > 0) {
                yield* sql`
                  INSERT INTO tidemark.link_refs (source_id, from_key, position, kind, raw, target, alias)
                  SELECT ${sourceId}, f, p, k, r, t, a
                    FROM unnest(${textArray(refs.map((r) => r.from))}::text[], ${refs.map((r) => r.position)}::int[],
                                ${textArray(refs.map((r) => r.kind))}::text[], ${textArray(refs.map((r) => r.raw))}::text[],
                                ${textArray(refs.map((r) => r.target))}::text[], ${textArray(refs.map((r) => r.alias))}::text[])
                         AS u(f, p, k, r, t, a)`
              }
              if (names.length > 0) {
                yield* sql`
                  INSERT INTO tidemark.link_names (source_id, name, key)
                  SELECT DISTINCT ${sourceId}, n, k
                    FROM unnest(${textArray(names.map((n) => n.name))}::text[], ${textArray(names.map((n) => n.key))}::text[]) AS u(n, k)`
              }
              // Done for the version read: a document changed since is found again next time.
              yield* sql`
                UPDATE tidemark.documents d SET links_version = u.v
                  FROM unnest(${keys}::text[], ${textArray(docs.map((doc) => doc.version))}::text[]) AS u(k, v)
                 WHERE d.source_id = ${sourceId} AND d.key = u.k AND d.version = u.v`
            })
          )
          total += docs.length
          yield* done(docs.length)
        }
      })

    const analyze = (sourceId: string) =>
      Effect.gen(function* () {
        // Counted by the changes themselves (`pg_stat_user_tables` lags by up to seconds).
        const [row] = yield* sql<{ kind: string; changed: string | null }>`
          SELECT s.kind, d.changed FROM tidemark.sources s
            LEFT JOIN tidemark.maintenance_debt d ON d.source_id = s.id AND d.kind = 'analyze'
           WHERE s.id = ${sourceId}`
        const changed = Number(row?.changed ?? 0)
        if (changed < analyzeAfter) return 0
        yield* sql.unsafe(
          row?.kind === "jsonl"
            ? "ANALYZE tidemark.entries (source_id, stream, identity)"
            : "VACUUM (ANALYZE) tidemark.documents (source_id, key, source_version)"
        )
        // Changes counted meanwhile still count toward the next one.
        yield* sql`
          UPDATE tidemark.maintenance_debt SET changed = greatest(changed - ${changed}, 0)
           WHERE source_id = ${sourceId} AND kind = 'analyze'`
        return 1
      })

    const purge = (sourceId: string) =>
      Effect.gen(function* () {
        const ops = yield* sql<{ id: string }>`
          DELETE FROM tidemark.ops WHERE source_id = ${sourceId} AND status <> 'open'
             AND id NOT IN (SELECT id FROM tidemark.ops WHERE source_id = ${sourceId} AND status <> 'open'
                             ORDER BY id DESC LIMIT ${keepOps})
          RETURNING id`
        yield* sql`
          DELETE FROM tidemark.op_items WHERE op_id = ANY(ARRAY(
            SELECT id FROM tidemark.ops WHERE source_id = ${sourceId} AND status <> 'open'))`
        // A folder or git sync resolves the errors of keys that are gone itself; a JSONL
        // error's key is `path:line`, and only a file marked gone says it is over.
        const errors = yield* sql<{ key: string }>`
          DELETE FROM tidemark.item_errors e WHERE e.source_id = ${sourceId}
             AND EXISTS (SELECT 1 FROM tidemark.jsonl_files f
                          WHERE f.source_id = e.source_id AND f.gone
                            AND (e.key = f.path OR left(e.key, length(f.path) + 1) = f.path || ':'))
             AND NOT EXISTS (SELECT 1 FROM tidemark.jsonl_files f
                              WHERE f.source_id = e.source_id AND NOT f.gone
                                AND (e.key = f.path OR left(e.key, length(f.path) + 1) = f.path || ':'))
          RETURNING key`
        const states = yield* sql<{ source_id: string }>`
          DELETE FROM tidemark.run_state r WHERE r.source_id = ${sourceId}
             AND r.flushed_at < now() - interval '30 days'
             AND NOT EXISTS (SELECT 1 FROM tidemark.ops o WHERE o.source_id = r.source_id AND o.status = 'open')
          RETURNING source_id`
        return ops.length + errors.length + states.length
      })

    return Runners.of({
      run: (sourceId: string, kind: Kind, done) =>
        (kind === "search"
          ? search(sourceId, done)
          : kind === "links"
            ? links(sourceId, done)
            : kind === "analyze"
              ? analyze(sourceId)
              : purge(sourceId)
        ).pipe(wrapSql(store, `pay the ${kind} debt of ${sourceId}`))
    })
  })
)
