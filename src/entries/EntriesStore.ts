/**
 * Where a JSONL source's entries and per-file checkpoints live. A file's
 * stream is one row (its fingerprint, size, mtime, processed offset, anchor and
 * the entries after it, backlog); each entry is one row. Every write is one step that begins with
 * the lease's fence and carries the stream's new checkpoint with its entries:
 * what is stored and where the file was read up to can never disagree, so a
 * sync killed at any moment re-imports nothing and loses nothing. The store is
 * lossless: entries leave a file (not present) and files go (gone), but
 * nothing is deleted except by `remove` (`--mirror`).
 */
import { Context, type Effect } from "effect"
import type { StoreError } from "../db/StoreError.js"

export interface Anchor {
  readonly offset: number
  readonly length: number
  readonly hash: string
  /** The anchor's line number. */
  readonly position: number
}

export type PathTaken = "unchanged" | "tail" | "reconcile" | "new"

/** A stream's checkpoint: what the last sync saw of its file. */
export interface Checkpoint {
  readonly path: string
  readonly gone: boolean
  /** sha256 of the first complete line, and its length (`hash:length`); null before the file has one. */
  readonly fingerprint: string | null
  readonly device: number | null
  readonly inode: number | null
  readonly size: number
  readonly mtimeUs: number
  /** Modified within the mtime tick of the read: size and mtime do not prove it unchanged. */
  readonly racy: boolean
  /** Everything before this offset is stored or recorded as an error. */
  readonly processed: number
  /** Complete lines before `processed`. */
  readonly lines: number
  readonly anchor: Anchor | null
  /** Hashes of the entries after the anchor and before `processed`, in order. */
  readonly tailHashes: ReadonlyArray<string>
  readonly nextSeq: number
  readonly backlog: number
  readonly backlogCap: number | null
  readonly pendingTail: boolean
  readonly lastPath: PathTaken | null
}

export interface Stream extends Checkpoint {
  readonly stream: number
}

export interface NewEntry {
  readonly identity: string
  readonly position: number
  readonly byteOffset: number
  readonly kind: "message" | "metadata"
  readonly role: string | null
  /** The entry's JSON text. */
  readonly json: Uint8Array
  readonly lineHash: string
}

export interface StoredEntry {
  readonly identity: string
  readonly position: number
  readonly lineHash: string
}

export interface StreamWrite {
  /** The stream, or null to create it (its first write). */
  readonly stream: number | null
  readonly checkpoint: Checkpoint
  readonly entries: ReadonlyArray<NewEntry>
  /** Entries still in the file, at their new line numbers and offsets (a reconcile). */
  readonly moved?: ReadonlyArray<{ readonly identity: string; readonly position: number; readonly byteOffset: number }>
  /** Entries no longer in the file. */
  readonly absent?: ReadonlyArray<string>
}

export interface EntriesStoreShape {
  /** Every stream of the source, gone ones included. */
  readonly streams: (sourceId: string) => Effect.Effect<ReadonlyArray<Stream>, StoreError>
  /** The stream's entries present in its file, in file order. */
  readonly present: (sourceId: string, stream: number) => Effect.Effect<ReadonlyArray<StoredEntry>, StoreError>
  /** Writes a stream's checkpoint with its entries in one step, `fence` first; returns the stream. */
  readonly write: <E>(
    sourceId: string,
    write: StreamWrite,
    fence: Effect.Effect<void, E>
  ) => Effect.Effect<number, E | StoreError>
  /** Marks streams gone (their files are no longer listed); their entries stay. */
  readonly markGone: <E>(
    sourceId: string,
    streams: ReadonlyArray<number>,
    fence: Effect.Effect<void, E>
  ) => Effect.Effect<void, E | StoreError>
  /** Deletes streams and their entries (`--mirror`); returns the entries deleted. */
  readonly remove: <E>(
    sourceId: string,
    streams: ReadonlyArray<number>,
    fence: Effect.Effect<void, E>
  ) => Effect.Effect<number, E | StoreError>
  /** Entries present in their files: of one stream, or of the whole source. */
  readonly count: (sourceId: string, stream?: number) => Effect.Effect<number, StoreError>
}

export class EntriesStore extends Context.Tag("tidemark/EntriesStore")<EntriesStore, EntriesStoreShape>() {}
