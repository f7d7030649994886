/**
 * Items a sync could not bring over, with the reason a person can act on: one
 * per (source, key), kept until the item imports or is gone, and retried by
 * every later sync meanwhile. The sync records them, never the sink: a sink of
 * one's own only says which items it rejected, and needs no knowledge of this
 * store. Every change takes the caller's lease fence first.
 */
import { Context, type Effect } from "effect"
import type { StoreError } from "../db/StoreError.js"

export interface ItemErrorRow {
  readonly key: string
  /** The version that failed, when the source knew one. */
  readonly version: string | null
  readonly error: string
}

export interface RecordedError extends ItemErrorRow {
  readonly attempts: number
}

export interface ErrorChange {
  /** Keys whose errors no longer apply (they imported, or are gone): cleared first. */
  readonly resolved: ReadonlyArray<string>
  /** Errors to record; one already recorded for the key is replaced and counts one attempt more. */
  readonly errors: ReadonlyArray<ItemErrorRow>
}

export interface ItemErrorStoreShape {
  /** The keys of the source that have a recorded error. */
  readonly keys: (sourceId: string) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /** Applies `change` in one step, `fence` first. */
  readonly record: <E>(
    sourceId: string,
    change: ErrorChange,
    fence: Effect.Effect<void, E>
  ) => Effect.Effect<void, E | StoreError>
  /** The most recent errors of the source, newest first. */
  readonly recent: (sourceId: string, limit: number) => Effect.Effect<ReadonlyArray<RecordedError>, StoreError>
}

export class ItemErrorStore extends Context.Tag("tidemark/ItemErrorStore")<ItemErrorStore, ItemErrorStoreShape>() {}

export const isEmptyChange = (change: ErrorChange) => change.resolved.length === 0 && change.errors.length === 0
