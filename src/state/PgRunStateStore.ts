/**
 * Run state in PostgreSQL, written through DirectDb outside any caller's
 * transaction (like checkpoints and leases): one upsert of the whole row.
 */
import { Effect, Layer, Option } from "effect"
import { DirectDb, outsideTransaction } from "../db/Database.js"
import { RunStateStore } from "./RunStateStore.js"

export const layer = Layer.effect(
  RunStateStore,
  Effect.map(DirectDb, ({ sql }) =>
    RunStateStore.of({
      load: (sourceId) =>
        outsideTransaction(
          sql<{ identity: unknown; counts: unknown; rate: unknown }>`
            SELECT identity, counts, rate FROM tidemark.run_state WHERE source_id = ${sourceId}`
        ).pipe(Effect.map((rows) => Option.fromNullable(rows[0]))),
      save: (sourceId, groups, flushedAt) =>
        outsideTransaction(
          sql`
            INSERT INTO tidemark.run_state AS r (source_id, identity, counts, rate, flushed_at)
            VALUES (${sourceId}, ${JSON.stringify(groups.identity)}::jsonb, ${JSON.stringify(groups.counts)}::jsonb,
                    ${JSON.stringify(groups.rate)}::jsonb, ${new Date(flushedAt).toISOString()}::timestamptz)
            ON CONFLICT (source_id) DO UPDATE SET
              identity = excluded.identity, counts = excluded.counts, rate = excluded.rate,
              flushed_at = excluded.flushed_at`
        ).pipe(Effect.asVoid)
    })
  )
)
