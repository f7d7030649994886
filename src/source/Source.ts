/**
 * A source, as the sync sees it: a plan (a stream of the items that exist
 * now, each with a cheap version that changes whenever its content may have
 * changed), whether that plan saw everything, and a way to read one item.
 * Folder (`dir`), git and JSONL sources implement it.
 */
import { Data, type Effect, type Stream } from "effect"

export interface PlannedItem {
  readonly key: string
  /** Cheap version known at plan time (folder: size and mtime; git: blob id). */
  readonly version: string
}

/** An item the source could not plan or read, with the reason a person can act on. */
export class ItemProblem extends Data.TaggedError("ItemProblem")<{ readonly key: string; readonly reason: string }> {}

export interface ReadItem {
  readonly key: string
  readonly content: string
  readonly size: number
  readonly mtime: Date | null
  /** sha256 of the content, hex. */
  readonly contentHash: string
  /** The source version to store: may differ from the planned one (it can be marked unreliable). */
  readonly version: string
}

export interface Source {
  readonly kind: "dir" | "git" | "jsonl"
  readonly root: string
  /** Items that exist now, and problems met while listing (an unreadable folder...). */
  readonly plan: Stream.Stream<PlannedItem | ItemProblem>
  /**
   * Whether the finished plan saw everything under these key prefixes. A prefix
   * that could not be listed must delete nothing under it.
   */
  readonly unlisted: Effect.Effect<ReadonlyArray<string>>
  readonly read: (item: PlannedItem) => Effect.Effect<ReadItem, ItemProblem>
}
