/**
 * Titles of documents written before title algorithm version 2 (see
 * `Document.ts`): recomputed from their stored content. Rows are updated only
 * where the title changes, and only if their content is still the one read
 * (a sync may write the row meanwhile, with the new algorithm). A new title
 * owes a new search vector and new wiki-link names: they are cleared, and the
 * debt recorded, in the same transaction.
 */
import { Effect, Either } from "effect"
import type { BackfillStep } from "../db/Backfills.js"
import { MainDb } from "../db/Database.js"
import { documentKinds } from "../maintenance/Debt.js"
import { recordIn } from "../maintenance/PgDebtStore.js"
import { parseDocument } from "./Document.js"

const pageSize = 1000

export const titleBackfill: BackfillStep = {
  name: "documents.title",
  version: 2,
  run: Effect.gen(function* () {
    const { sql } = yield* MainDb
    let after = { sourceId: "", key: "" }
    for (;;) {
      const rows = yield* sql<{
        source_id: string
        key: string
        version: string
        content: string
        title: string | null
      }>`
        SELECT source_id, key, version, content, title FROM tidemark.documents
         WHERE (source_id, key) > (${after.sourceId}, ${after.key})
         ORDER BY source_id, key LIMIT ${pageSize}`
      if (rows.length === 0) return
      const changed = rows.flatMap((row) => {
        const parsed = parseDocument(row.key, row.content)
        return Either.isRight(parsed) && parsed.right.title !== row.title ? [{ ...row, title: parsed.right.title }] : []
      })
      if (changed.length > 0) {
        yield* sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`
              UPDATE tidemark.documents AS d SET title = u.t, tsv = NULL, links_version = NULL
                FROM unnest(${changed.map((r) => r.source_id)}::text[], ${changed.map((r) => r.key)}::text[],
                            ${changed.map((r) => r.version)}::text[], ${changed.map((r) => r.title)}::text[]) AS u(s, k, v, t)
               WHERE d.source_id = u.s AND d.key = u.k AND d.version = u.v`
            for (const sourceId of new Set(changed.map((r) => r.source_id))) {
              yield* recordIn(sql, sourceId, documentKinds)
            }
          })
        )
      }
      const last = rows[rows.length - 1]!
      after = { sourceId: last.source_id, key: last.key }
    }
  })
}
