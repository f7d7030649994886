/**
 * Banked items in PostgreSQL, written through DirectDb outside any caller's
 * transaction: one `INSERT … SELECT FROM unnest(...)` of at most 1000 rows per
 * statement, which also bumps the op's `banked` count by the rows it added.
 */
import { Effect, Layer } from "effect"
import { DirectDb, outsideTransaction } from "../db/Database.js"
import { CheckpointStore, maxRowsPerStatement } from "./CheckpointStore.js"

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

export const layer = Layer.effect(
  CheckpointStore,
  Effect.map(DirectDb, ({ sql }) =>
    CheckpointStore.of({
      append: (opId, items) =>
        outsideTransaction(
          Effect.forEach(
            chunks(items, maxRowsPerStatement),
            (chunk) => sql`
              WITH banked AS (
                INSERT INTO tidemark.op_items (op_id, key, version)
                SELECT ${opId}, k, v FROM unnest(${chunk.map((i) => i.key)}::text[], ${chunk.map((i) => i.version)}::text[]) AS t(k, v)
                ON CONFLICT (op_id, key) DO UPDATE SET version = excluded.version, banked_at = now()
                RETURNING (xmax = 0) AS added
              )
              UPDATE tidemark.ops
                 SET banked = banked + (SELECT count(*) FROM banked WHERE added), updated_at = now()
               WHERE id = ${opId}`,
            { discard: true }
          )
        ),
      bankedAmong: (opId, keys) =>
        outsideTransaction(
          sql<{ key: string; version: string }>`
            SELECT key, version FROM tidemark.op_items WHERE op_id = ${opId} AND key = ANY(${keys}::text[])`
        ).pipe(Effect.map((rows) => new Map(rows.map((r) => [r.key, r.version]))))
    })
  )
)
