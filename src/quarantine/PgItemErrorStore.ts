/** Item errors in `tidemark.item_errors`, on the main pool: a change is one transaction, the lease's fence first. */
import { Effect, Layer } from "effect"
import { MainDb, transaction } from "../db/Database.js"
import { wrapSql } from "../db/StoreError.js"
import { textArray } from "../db/TextArray.js"
import { ItemErrorStore } from "./ItemErrorStore.js"

const store = "item error store"

export const layer = Layer.effect(
  ItemErrorStore,
  Effect.map(MainDb, ({ sql }) =>
    ItemErrorStore.of({
      keys: (sourceId) =>
        sql<{ key: string }>`SELECT key FROM tidemark.item_errors WHERE source_id = ${sourceId}`.pipe(
          Effect.map((rows) => rows.map((r) => r.key)),
          wrapSql(store, "list the keys with errors")
        ),
      record: (sourceId, change, fence) =>
        transaction(sql)(
          Effect.gen(function* () {
            yield* fence
            if (change.resolved.length > 0) {
              yield* sql`DELETE FROM tidemark.item_errors WHERE source_id = ${sourceId} AND key = ANY(${textArray(change.resolved)}::text[])`
            }
            if (change.errors.length > 0) {
              yield* sql`
                INSERT INTO tidemark.item_errors AS e (source_id, key, version, error)
                SELECT ${sourceId}, k, v, r
                  FROM unnest(${textArray(change.errors.map((e) => e.key))}::text[],
                              ${textArray(change.errors.map((e) => e.version))}::text[],
                              ${textArray(change.errors.map((e) => e.error))}::text[]) AS u(k, v, r)
                ON CONFLICT (source_id, key) DO UPDATE SET
                  version = excluded.version, error = excluded.error, attempts = e.attempts + 1, last_at = now()`
            }
          })
        ).pipe(wrapSql(store, "record item errors")),
      recent: (sourceId, limit) =>
        sql<{ key: string; version: string | null; error: string; attempts: number }>`
          SELECT key, version, error, attempts FROM tidemark.item_errors
           WHERE source_id = ${sourceId} ORDER BY last_at DESC, key LIMIT ${limit}`.pipe(
          wrapSql(store, "list recent item errors")
        )
    })
  )
)
