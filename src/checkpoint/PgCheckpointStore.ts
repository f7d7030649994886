/**
 * Banked items in PostgreSQL, written through DirectDb outside any caller's
 * transaction: one statement of at most 1000 rows, which also bumps the op's
 * `banked` count by the rows it added.
 *
 * An op's items are nearly always banked once, so a chunk is first inserted
 * as it is: a quarter cheaper for the server than looking each key up first,
 * and a third cheaper than `ON CONFLICT`, whose speculative insertion costs
 * more than the lookup. A chunk with an item banked again (at a new version,
 * or by a retried write that had landed) meets the primary key and fails as a
 * whole; it is then merged: those items updated, the others inserted. Only one
 * writer (the lease holder, one flush at a time) banks into an op, and a
 * second one would meet the primary key, not a wrong count.
 */
import { Effect, Layer } from "effect"
import { DirectDb, outsideTransaction } from "../db/Database.js"
import { sqlStateOf, uniqueViolation } from "../db/SqlState.js"
import { textArray } from "../db/TextArray.js"
import { inBatches } from "../util/batches.js"
import { CheckpointStore, maxRowsPerStatement } from "./CheckpointStore.js"

export const layer = Layer.effect(
  CheckpointStore,
  Effect.map(DirectDb, ({ sql }) => {
    // `keys` and `versions`: a chunk's, as text arrays.
    const insert = (opId: number, keys: Buffer, versions: Buffer) => sql`
      WITH added AS (
             INSERT INTO tidemark.op_items (op_id, key, version)
             SELECT ${opId}, k, v FROM unnest(${keys}::text[], ${versions}::text[]) AS t(k, v)
             RETURNING 1)
      UPDATE tidemark.ops
         SET banked = banked + (SELECT count(*) FROM added), updated_at = now()
       WHERE id = ${opId}`

    const merge = (opId: number, keys: Buffer, versions: Buffer) => sql`
      WITH input AS MATERIALIZED (
             SELECT k, v FROM unnest(${keys}::text[], ${versions}::text[]) AS t(k, v)),
           rebanked AS (
             UPDATE tidemark.op_items AS o SET version = input.v, banked_at = now()
               FROM input
              WHERE o.op_id = ${opId} AND o.key = ANY(ARRAY(SELECT k FROM input)) AND o.key = input.k
             RETURNING o.key),
           added AS (
             INSERT INTO tidemark.op_items (op_id, key, version)
             SELECT ${opId}, k, v FROM input WHERE NOT EXISTS (SELECT FROM rebanked WHERE rebanked.key = input.k)
             RETURNING 1)
      UPDATE tidemark.ops
         SET banked = banked + (SELECT count(*) FROM added), updated_at = now()
       WHERE id = ${opId}`

    return CheckpointStore.of({
      append: (opId, items) =>
        outsideTransaction(
          Effect.forEach(
            inBatches(items, maxRowsPerStatement),
            (chunk) => {
              const keys = textArray(chunk.map((item) => item.key))
              const versions = textArray(chunk.map((item) => item.version))
              return insert(opId, keys, versions).pipe(
                Effect.catchIf(
                  (error) => sqlStateOf(error) === uniqueViolation,
                  () => merge(opId, keys, versions)
                )
              )
            },
            { discard: true }
          )
        ),
      bankedAmong: (opId, keys) =>
        outsideTransaction(
          sql<{ key: string; version: string }>`
            SELECT key, version FROM tidemark.op_items WHERE op_id = ${opId} AND key = ANY(${textArray(keys)}::text[])`
        ).pipe(Effect.map((rows) => new Map(rows.map((r) => [r.key, r.version]))))
    })
  })
)
