/**
 * Where synced items go. The sync program knows nothing of the tables behind
 * a sink: it asks which planned items differ from what is stored, pages
 * through the stored keys (to find what the source no longer lists) or reads
 * them all with their versions at once (a sink that can), and hands
 * over batches to write, each in one transaction that begins with the lease's
 * fence. A sink may reject an item it cannot store (a broken frontmatter
 * block, say): it returns those with the reason, and the sync records them as
 * item errors (it also records the source's own problems, and clears errors
 * that no longer apply). A sink never writes item errors itself.
 */
import { Context, Data, type Effect } from "effect"
import type { ItemErrorRow } from "../quarantine/ItemErrorStore.js"
import type { PlannedItem, ReadItem } from "../source/Source.js"

export type { ItemErrorRow } from "../quarantine/ItemErrorStore.js"

/** A sink's own failure (its database's, say), with the cause; transient causes are retried by the sync. */
export class SinkError extends Data.TaggedError("SinkError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message() {
    const cause = this.cause as { readonly message?: unknown } | undefined
    return `sink: ${this.operation} failed${typeof cause?.message === "string" ? `: ${cause.message}` : ""}`
  }
}

/** A planned item whose stored version differs from the planned one. */
export interface Differing {
  readonly item: PlannedItem
  /** The stored source version, or null when the item is not stored. */
  readonly stored: string | null
}

export interface Batch {
  readonly items: ReadonlyArray<ReadItem>
  readonly deletes: ReadonlyArray<string>
  /**
   * Keys of `items` that the plan found not stored. A sink may insert them
   * without handling conflicts (the documents sink copies them in), but must
   * still store a batch correctly if one of them turns out to exist.
   */
  readonly unstored?: ReadonlySet<string>
}

export interface SinkShape {
  /** Which sink it is, as `tidemark status` names it (default "custom"); the documents sink is "documents". */
  readonly name?: string
  /** What it stores, in messages ("refusing to delete 300 of 1000 documents"). Default "items". */
  readonly noun?: string
  /**
   * The items whose stored version differs from the planned one. Not called
   * while nothing is stored for the source (every item is new then): reading a
   * planned version may cost the source a file system call.
   */
  readonly differing: (
    sourceId: string,
    items: ReadonlyArray<PlannedItem>
  ) => Effect.Effect<ReadonlyArray<Differing>, SinkError>
  /**
   * Optional: every stored key with its stored version (null where none is
   * stored), in key order, in one read. A plan of a complete listing then
   * compares in memory instead of asking `differing` batch by batch, and finds
   * what is gone from the same read instead of paging `keysAfter`.
   */
  readonly storedVersions?: (sourceId: string) => Effect.Effect<Map<string, string | null>, SinkError>
  /** How many items are stored. */
  readonly count: (sourceId: string) => Effect.Effect<number, SinkError>
  /** Stored keys after `after`, in key order, at most `limit`. */
  readonly keysAfter: (
    sourceId: string,
    after: string,
    limit: number
  ) => Effect.Effect<ReadonlyArray<string>, SinkError>
  /**
   * Writes one batch in one transaction, `fence` first (a failing fence must
   * leave nothing written). Returns the items it rejected, with why: the sync
   * records those as item errors.
   */
  readonly write: <E>(
    sourceId: string,
    batch: Batch,
    fence: Effect.Effect<void, E>
  ) => Effect.Effect<ReadonlyArray<ItemErrorRow>, E | SinkError>
  /**
   * Upkeep after a sync that changed `changedRows` rows: it runs once every
   * batch is written, alongside the closing of the op, and writes no items.
   */
  readonly afterSync?: (changedRows: number) => Effect.Effect<void, SinkError>
}

export class Sink extends Context.Tag("tidemark/Sink")<Sink, SinkShape>() {}

/** The sink's noun for messages. */
export const nounOf = (sink: SinkShape) => sink.noun ?? "items"

export const nameOf = (sink: SinkShape) => sink.name ?? "custom"
