/**
 * A source, as the sync sees it. An op picks a target (what the source looks
 * like now: for git, a commit; for a folder, simply "now"), then the source
 * lists what to bring over toward it:
 *
 * - a `Complete` listing names every item that exists at the target, with a
 *   cheap version that changes whenever its content may have changed; stored
 *   items it does not name are gone (except under prefixes it could not list);
 * - a `Delta` listing names only the items that changed since the last synced
 *   watermark, and the keys that are gone.
 *
 * `read` fetches the content of a batch of planned items (a source reads a
 * batch faster than its items one by one: one message to a reading thread, one
 * pipelined exchange with git). Folder (`dir`), git and JSONL sources
 * implement it.
 */
import { Data, type Effect, type Stream } from "effect"

export interface PlannedItem {
  readonly key: string
  /** Cheap version known at plan time (folder: size and mtime; git: blob id). */
  readonly version: string
}

/** An item the source could not plan or read, with the reason a person can act on. */
export class ItemProblem extends Data.TaggedError("ItemProblem")<{ readonly key: string; readonly reason: string }> {}

/** The source as a whole cannot be used (not a repository, an unknown ref, git missing...). */
export class SourceUnavailable extends Data.TaggedError("SourceUnavailable")<{
  readonly root: string
  readonly reason: string
  readonly hint?: string
}> {
  override get message() {
    return `cannot sync ${this.root}: ${this.reason}`
  }
}

export interface ReadItem {
  readonly key: string
  /**
   * The content: UTF-8, checked by the source (valid, no NUL byte). Bytes rather
   * than a string, so that a sink can store them as they are (`textOf` decodes).
   */
  readonly content: Uint8Array
  readonly size: number
  readonly mtime: Date | null
  /** sha256 of the content, hex. */
  readonly contentHash: string
  /** The source version to store: may differ from the planned one (it can be marked unreliable). */
  readonly version: string
}

/** UTF-8 bytes as a string (without copying them first). */
export const decodeUtf8 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")

/** An item's content as a string. */
export const textOf = (item: ReadItem): string => decodeUtf8(item.content)

/** Where an op goes, as recorded in `ops.target` (JSON). */
export type Target = { readonly [field: string]: string }

export type Listing =
  | {
      readonly _tag: "Complete"
      /** Items that exist now, and problems met while listing (an unreadable folder, a symlink...). */
      readonly items: Stream.Stream<PlannedItem | ItemProblem, SourceUnavailable>
      /**
       * Key prefixes the finished listing could not see into: nothing under them
       * may be deleted.
       */
      readonly unlisted: Effect.Effect<ReadonlyArray<string>>
    }
  | {
      readonly _tag: "Delta"
      /** Items added or changed since the watermark, and problems met while listing. */
      readonly items: Stream.Stream<PlannedItem | ItemProblem, SourceUnavailable>
      /** Keys removed since the watermark. */
      readonly gone: ReadonlyArray<string>
    }

export interface Source {
  readonly kind: "dir" | "git" | "jsonl"
  readonly root: string
  /**
   * The target of an op. `pinned` is the target the open op recorded when it
   * began (null for a new op): the source keeps it, or moves on when it can no
   * longer be reached.
   */
  readonly target: (pinned: Target | null) => Effect.Effect<Target, SourceUnavailable>
  /** What to do to bring the stored items from `watermark` (the last finished sync's, if any) to `target`. */
  readonly plan: (target: Target, watermark: unknown) => Effect.Effect<Listing, SourceUnavailable>
  /**
   * Gets ready to read (a folder starts its reading thread) while the plan is
   * still being made: the sync asks once the plan has found something to read.
   * Optional: a source with nothing to start leaves it out.
   */
  readonly prepareRead?: Effect.Effect<void>
  /**
   * Looks up the planned versions of a batch of listed items at once, before the
   * plan compares them with what is stored (a folder does its `lstat`s on its
   * reading thread, while the walk goes on). Optional: without it, or where it
   * leaves one out, a version is looked up when first asked for.
   */
  readonly lookUpVersions?: (items: ReadonlyArray<PlannedItem>) => Effect.Effect<void>
  /** Each item's content, or why it cannot be imported; in the order of `items`. */
  readonly read: (
    items: ReadonlyArray<PlannedItem>
  ) => Effect.Effect<ReadonlyArray<ReadItem | ItemProblem>, SourceUnavailable>
  /** What a finished op toward `target` records as the source's watermark. */
  readonly watermark: (target: Target) => Record<string, unknown>
}
