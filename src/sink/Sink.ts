/**
 * Where synced items go. The sync program knows nothing of the tables behind
 * a sink: it asks which planned items differ from what is stored, pages
 * through the stored keys (to find what the source no longer lists), and hands
 * over batches to write, each in one transaction that begins with the lease's
 * fence. A sink may reject an item it cannot store (a broken frontmatter
 * block, say): it returns those, and they are recorded as item errors in the
 * same transaction.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Context, type Effect } from "effect"
import type { PlannedItem, ReadItem } from "../source/Source.js"

export interface ItemErrorRow {
  readonly key: string
  readonly version: string | null
  readonly error: string
}

/** A planned item whose stored version differs from the planned one. */
export interface Differing {
  readonly item: PlannedItem
  /** The stored source version, or null when the item is not stored. */
  readonly stored: string | null
  /** Whether the item has a recorded error (it is being retried). */
  readonly failed: boolean
}

export interface Batch {
  readonly items: ReadonlyArray<ReadItem>
  readonly deletes: ReadonlyArray<string>
  readonly errors: ReadonlyArray<ItemErrorRow>
  /**
   * Items whose recorded errors no longer apply (they import now, or are gone):
   * cleared before this batch's own errors are recorded.
   */
  readonly resolved?: ReadonlyArray<string>
  /**
   * Keys of `items` that the plan found not stored. A sink may insert them
   * without handling conflicts (the documents sink copies them in), but must
   * still store a batch correctly if one of them turns out to exist.
   */
  readonly unstored?: ReadonlySet<string>
}

export interface SinkShape {
  /**
   * The items whose stored version differs from the planned one. Not called
   * while nothing is stored for the source (every item is new then): reading a
   * planned version may cost the source a file system call.
   */
  readonly differing: (
    sourceId: string,
    items: ReadonlyArray<PlannedItem>
  ) => Effect.Effect<ReadonlyArray<Differing>, SqlError>
  /** How many items are stored. */
  readonly count: (sourceId: string) => Effect.Effect<number, SqlError>
  /** Stored keys after `after`, in key order, at most `limit`. */
  readonly keysAfter: (sourceId: string, after: string, limit: number) => Effect.Effect<ReadonlyArray<string>, SqlError>
  /** Writes one batch in one transaction, `fence` first; returns the items it rejected (recorded as errors). */
  readonly write: <E>(
    sourceId: string,
    batch: Batch,
    fence: Effect.Effect<void, E>
  ) => Effect.Effect<ReadonlyArray<ItemErrorRow>, E | SqlError>
  /**
   * Upkeep after a sync that changed `changedRows` rows: it runs once every
   * batch is written, alongside the closing of the op, and writes no items.
   */
  readonly afterSync: (changedRows: number) => Effect.Effect<void, SqlError>
}

export class Sink extends Context.Tag("tidemark/Sink")<Sink, SinkShape>() {}
