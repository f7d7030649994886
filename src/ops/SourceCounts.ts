/**
 * The per-source counts kept on `tidemark.sources` (documents, present
 * entries): moved by the writes that change them, in their own transaction and
 * after the lease's fence, so they can never disagree with the rows they count
 * and `tidemark status` never has to count rows.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import { Effect } from "effect"

export type CountColumn = "documents" | "entries"

/** Adds `delta` to the source's `column` (nothing to do for 0). */
export const bumpIn = (sql: SqlClient, sourceId: string, column: CountColumn, delta: number) =>
  delta === 0
    ? Effect.void
    : Effect.asVoid(
        column === "documents"
          ? sql`UPDATE tidemark.sources SET documents = documents + ${delta} WHERE id = ${sourceId}`
          : sql`UPDATE tidemark.sources SET entries = entries + ${delta} WHERE id = ${sourceId}`
      )
