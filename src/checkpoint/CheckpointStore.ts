/**
 * Where banked items live: one row per (op, key) in `tidemark.op_items`,
 * appended O(delta) per flush. Small, so the flush timing can be simulated
 * against the in-memory store under TestClock.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Context, type Effect } from "effect"

export interface BankedItem {
  readonly key: string
  readonly version: string
}

export interface CheckpointStoreShape {
  /** Appends (or re-versions) items; counts the new ones into the op's `banked`. */
  readonly append: (opId: number, items: ReadonlyArray<BankedItem>) => Effect.Effect<void, SqlError>
  /** The banked version of each of `keys` that is banked. Bounded memory: asked per batch. */
  readonly bankedAmong: (
    opId: number,
    keys: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyMap<string, string>, SqlError>
}

export class CheckpointStore extends Context.Tag("tidemark/CheckpointStore")<CheckpointStore, CheckpointStoreShape>() {}

/** Rows per INSERT statement. */
export const maxRowsPerStatement = 1000
