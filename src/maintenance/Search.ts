/**
 * Searching the documents: web-search syntax (`websearch_to_tsquery`: quoted
 * phrases, `-` to exclude, `or`), ranked by `ts_rank_cd` over the stored
 * vectors (title above content), a highlighted snippet for the top results
 * only (`ts_headline` reads the whole content). A query is data: it is bound,
 * never spliced, and websearch syntax has no errors. The search says how far
 * behind its index is — documents not yet indexed are not silently missing.
 */
import { Effect } from "effect"
import { MainDb } from "../db/Database.js"
import { wrapSql } from "../db/StoreError.js"
import { textArray } from "../db/TextArray.js"

/**
 * Marks around a match and between fragments. A parameter, not SQL text: a tagged
 * template's raw strings keep their characters, and the CLI's bundle stays ASCII
 * (its launcher reads it as latin1, see `scripts/build-cli.mjs`).
 */
const headlineOptions =
  "StartSel=\u00ab, StopSel=\u00bb, MaxFragments=2, MaxWords=18, MinWords=6, FragmentDelimiter= \u2026 "

export interface SearchResult {
  readonly sourceId: string
  readonly key: string
  readonly title: string | null
  readonly rank: number
  /** The best fragments, matches between «…». */
  readonly snippet: string
}

export interface SearchAnswer {
  readonly results: ReadonlyArray<SearchResult>
  /** Documents in scope whose search vector is not made yet (the search debt). */
  readonly behind: number
}

export const search = Effect.fn("Search.search")(
  function* (query: string, options: { readonly sourceId?: string; readonly limit: number }) {
    const { sql } = yield* MainDb
    const sources = yield* sql<{ id: string; config: string }>`
    SELECT id, coalesce(options->>'searchConfig', 'simple') AS config FROM tidemark.sources
     WHERE ${options.sourceId === undefined ? sql`true` : sql`id = ${options.sourceId}`}`
    // One query per text search configuration in use (a vector only matches a query of its own).
    const byConfig = new Map<string, Array<string>>()
    for (const s of sources) byConfig.set(s.config, [...(byConfig.get(s.config) ?? []), s.id])
    const results: Array<SearchResult> = []
    for (const [config, ids] of byConfig) {
      const found = yield* sql<{ source_id: string; key: string; title: string | null; rank: number; snippet: string }>`
      WITH q AS (SELECT websearch_to_tsquery(${config}::regconfig, ${query}) AS q),
           top AS (
             SELECT d.source_id, d.key, d.title, ts_rank_cd(d.tsv, q.q) AS rank
               FROM tidemark.documents d, q
              WHERE d.source_id = ANY(${textArray(ids)}::text[]) AND d.tsv @@ q.q
              ORDER BY rank DESC, d.key
              LIMIT ${options.limit})
      SELECT top.source_id, top.key, top.title, top.rank::float8 AS rank,
             ts_headline(${config}::regconfig, d.content, q.q,
                         ${headlineOptions}) AS snippet
        FROM top JOIN tidemark.documents d USING (source_id, key), q
       ORDER BY top.rank DESC, top.key`
      for (const row of found) {
        results.push({
          sourceId: row.source_id,
          key: row.key,
          title: row.title,
          rank: row.rank,
          snippet: row.snippet.replace(/\s+/g, " ").trim()
        })
      }
    }
    // A document without a vector always has search debt owed (both are written in one
    // transaction): only a source that owes it is counted.
    const owing = yield* sql<{ source_id: string }>`
    SELECT source_id FROM tidemark.maintenance_debt
     WHERE kind = 'search' AND pending_since IS NOT NULL AND source_id = ANY(${textArray(sources.map((s) => s.id))}::text[])`
    const [pending] =
      owing.length === 0
        ? [{ n: "0" }]
        : yield* sql<{ n: string }>`
          SELECT count(*) AS n FROM tidemark.documents
           WHERE tsv IS NULL AND source_id = ANY(${textArray(owing.map((o) => o.source_id))}::text[])`
    return {
      results: results.sort((a, b) => b.rank - a.rank || (a.key < b.key ? -1 : 1)).slice(0, options.limit),
      behind: Number(pending?.n ?? 0)
    } satisfies SearchAnswer
  },
  wrapSql("search", "search")
)
