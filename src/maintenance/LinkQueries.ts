/**
 * Reading the link graph (the `tidemark.links` view resolves each link when it
 * is read): a document's outgoing links, its backlinks (links whose target
 * resolves to it: found by the names they could use, then checked), and a
 * source's dangling links.
 */
import * as path from "node:path"
import { Effect } from "effect"
import { MainDb } from "../db/Database.js"
import { wrapSql } from "../db/StoreError.js"
import { textArray } from "../db/TextArray.js"

export interface LinkRow {
  readonly sourceId: string
  readonly fromKey: string
  readonly kind: "markdown" | "wiki"
  readonly raw: string
  readonly target: string
  readonly alias: string | null
  readonly toKey: string | null
  readonly resolved: boolean
}

interface Row {
  readonly source_id: string
  readonly from_key: string
  readonly kind: "markdown" | "wiki"
  readonly raw: string
  readonly target: string
  readonly alias: string | null
  readonly to_key: string | null
  readonly resolved: boolean
}

const toLink = (r: Row): LinkRow => ({
  sourceId: r.source_id,
  fromKey: r.from_key,
  kind: r.kind,
  raw: r.raw,
  target: r.target,
  alias: r.alias,
  toKey: r.to_key,
  resolved: r.resolved
})

export interface DocumentLinks {
  readonly outgoing: ReadonlyArray<LinkRow>
  readonly backlinks: ReadonlyArray<LinkRow>
  /** Documents of the source whose links are not extracted yet (the links debt). */
  readonly behind: number
}

export const ofDocument = Effect.fn("LinkQueries.ofDocument")(
  function* (sourceId: string, key: string) {
    const { sql } = yield* MainDb
    const [doc] = yield* sql<{ title: string | null }>`
    SELECT title FROM tidemark.documents WHERE source_id = ${sourceId} AND key = ${key}`
    const base = path.posix.basename(key)
    const names = [
      key,
      key.replace(/\.md$/, ""),
      base,
      base.replace(/\.[^.]+$/, ""),
      ...(doc?.title ? [doc.title] : [])
    ].map((n) => n.toLowerCase())
    const outgoing = yield* sql<Row>`
    SELECT * FROM tidemark.links WHERE source_id = ${sourceId} AND from_key = ${key} ORDER BY position`
    const backlinks = yield* sql<Row>`
    SELECT * FROM tidemark.links
     WHERE source_id = ${sourceId} AND lower(target) = ANY(${textArray([...new Set(names)])}::text[]) AND to_key = ${key}
     ORDER BY from_key, position`
    const [behind] = yield* sql<{ n: string }>`
    SELECT count(*) AS n FROM tidemark.documents WHERE source_id = ${sourceId} AND links_version IS NULL`
    return {
      outgoing: outgoing.map(toLink),
      backlinks: backlinks.map(toLink),
      behind: Number(behind?.n ?? 0)
    } satisfies DocumentLinks
  },
  wrapSql("links", "read links")
)

export const dangling = Effect.fn("LinkQueries.dangling")(
  function* (sourceId: string) {
    const { sql } = yield* MainDb
    const rows = yield* sql<Row>`
    SELECT * FROM tidemark.links WHERE source_id = ${sourceId} AND NOT resolved ORDER BY from_key, position`
    return rows.map(toLink)
  },
  wrapSql("links", "read dangling links")
)

/** The sources that hold `key`. */
export const sourcesWith = Effect.fn("LinkQueries.sourcesWith")(
  function* (key: string) {
    const { sql } = yield* MainDb
    const rows = yield* sql<{
      source_id: string
    }>`SELECT source_id FROM tidemark.documents WHERE key = ${key} ORDER BY source_id`
    return rows.map((r) => r.source_id)
  },
  wrapSql("links", "find the document")
)
