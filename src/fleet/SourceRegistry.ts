/**
 * The fleet's recorded sources: a name, how to sync it (`SourceSpec`) and
 * its schedule, if any. A port with two adapters (PostgreSQL, memory) and one
 * contract suite over both; workers read it, `tidemark source add|list|remove`
 * write it.
 */
import { Context, Data, type Effect, type Option } from "effect"
import type { StoreError } from "../db/StoreError.js"
import type { SourceSpec } from "./SourceSpec.js"

export interface RecordedSource {
  readonly name: string
  readonly spec: SourceSpec
  /** The cron expression of its schedule; null: synced only when enqueued. */
  readonly schedule: string | null
  readonly createdAt: Date
}

/** `source add` of a name already recorded. */
export class SourceExists extends Data.TaggedError("SourceExists")<{ readonly name: string }> {
  override get message() {
    return `source ${this.name} is already recorded`
  }
  get hint() {
    return `see it with \`tidemark source list\`; add --replace to record it anew`
  }
}

/** A stored spec that does not decode (written by a newer tidemark, or by hand). */
export class UnreadableSpec extends Data.TaggedError("UnreadableSpec")<{
  readonly name: string
  readonly reason: string
}> {
  override get message() {
    return `the recorded options of source ${this.name} cannot be read: ${this.reason}`
  }
}

export interface SourceRegistryShape {
  /** Records a source; with `replace`, one of the same name is replaced (its history stays). */
  readonly add: (
    source: Omit<RecordedSource, "createdAt">,
    options?: { readonly replace?: boolean }
  ) => Effect.Effect<void, SourceExists | StoreError>
  readonly get: (name: string) => Effect.Effect<Option.Option<RecordedSource>, UnreadableSpec | StoreError>
  /** Every recorded source, by name. */
  readonly list: Effect.Effect<ReadonlyArray<RecordedSource>, UnreadableSpec | StoreError>
  /** Forgets a source; false if it was not recorded. */
  readonly remove: (name: string) => Effect.Effect<boolean, StoreError>
}

export class SourceRegistry extends Context.Tag("tidemark/SourceRegistry")<SourceRegistry, SourceRegistryShape>() {}
