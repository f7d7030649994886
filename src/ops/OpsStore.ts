/**
 * Where sources and ops live. An op is one resumable attempt to bring a
 * source up to date; at most one is open per source. Every write takes the
 * caller's lease fence first, in the same transaction, so a holder that lost
 * its lease can change nothing. Small on purpose: the sync's resume rules run
 * against this interface, simulated in memory under `TestClock` and for real
 * on PostgreSQL, with one behaviour suite over both.
 */
import { Context, Data, type Effect } from "effect"
import type { StoreError } from "../db/StoreError.js"
import type { Target } from "../source/Source.js"

export class SourceConflict extends Data.TaggedError("SourceConflict")<{
  readonly sourceId: string
  readonly existingRoot: string
  readonly existingKind: string
}> {
  override get message() {
    return `source ${this.sourceId} already syncs ${this.existingKind} ${this.existingRoot}`
  }
  get hint() {
    return "pick another name with --source"
  }
}

export interface SourceRecord {
  readonly id: string
  readonly kind: string
  readonly root: string
  /** The sink its items go to (`SinkShape.name`). */
  readonly sink: string
  /**
   * The text search configuration of its search vectors, when given: a change
   * drops them all, to be made again (the search debt).
   */
  readonly searchConfig?: string
}

export class UnknownSearchConfig extends Data.TaggedError("UnknownSearchConfig")<{ readonly name: string }> {
  override get message() {
    return `${this.name} is not a text search configuration of this database`
  }
  get hint() {
    return "see `\\dF` in psql for the ones there are (simple, english, german, ...)"
  }
}

export class UnknownSource extends Data.TaggedError("UnknownSource")<{ readonly sourceId: string }> {
  override get message() {
    return `no source named ${JSON.stringify(this.sourceId)}`
  }
  get hint() {
    return "`tidemark sources` lists them"
  }
}

/**
 * What tidemark stores of a source, in rows: what `removeSource` deletes. The
 * leases are not in it: the remover holds them, and its release deletes them.
 */
export interface SourceContents {
  readonly kind: string
  readonly root: string
  readonly sink: string
  readonly documents: number
  readonly entries: number
  /** JSONL files' checkpoints. */
  readonly jsonlFiles: number
  readonly ops: number
  /** Items banked in the checkpoints of its ops. */
  readonly bankedItems: number
  readonly itemErrors: number
  /** Saved progress (0 or 1). */
  readonly runState: number
  /** Maintenance debt rows (one per kind). */
  readonly maintenanceDebt: number
  /** Links and link names found in its documents. */
  readonly links: number
}

export interface OpenOp {
  readonly id: number
  /** Items banked by earlier runs of the op. */
  readonly banked: number
  readonly restarts: number
  readonly resumed: boolean
  /** The source's watermark when the op opened: where its plan starts from. */
  readonly base: unknown
  /** The target the op pinned, or null when it has none yet. */
  readonly target: Target | null
}

/** A target is pinned once it has a field: `{}` is "none yet". */
export const pinned = (target: unknown): Target | null =>
  target !== null && typeof target === "object" && Object.keys(target).length > 0 ? (target as Target) : null

export interface OpsStoreShape {
  /** Records the source (or touches it); fails with `SourceConflict` if its name is taken by another root or kind. */
  readonly ensureSource: <E>(
    source: SourceRecord,
    fence: Effect.Effect<void, E>
  ) => Effect.Effect<void, E | SourceConflict | UnknownSearchConfig | StoreError>
  /** Resumes the source's open op (one restart more, under `token`), or opens one from its watermark. */
  readonly openOrResume: <E>(
    sourceId: string,
    token: number,
    fence: Effect.Effect<void, E>
  ) => Effect.Effect<OpenOp, E | StoreError>
  /** Pins the op's target (a new op's, or a resumed op's that had to move on). */
  readonly recordTarget: <E>(
    opId: number,
    target: Target,
    fence: Effect.Effect<void, E>
  ) => Effect.Effect<void, E | StoreError>
  /** Records what the op's plan found to do: the items banked before plus those left. */
  readonly recordPlanned: <E>(
    opId: number,
    planned: number,
    fence: Effect.Effect<void, E>
  ) => Effect.Effect<void, E | StoreError>
  /** Advances the watermark, closes the op and drops its banked items, in one step. */
  readonly finish: <E>(
    sourceId: string,
    opId: number,
    watermark: unknown,
    fence: Effect.Effect<void, E>
  ) => Effect.Effect<void, E | StoreError>
  /** The source's watermark: what its last finished sync recorded (null before the first). */
  readonly watermarkOf: (sourceId: string) => Effect.Effect<unknown, StoreError>
  /** What is stored of the source; `UnknownSource` if there is no such source. */
  readonly contentsOf: (sourceId: string) => Effect.Effect<SourceContents, UnknownSource | StoreError>
  /**
   * Deletes the source and everything tidemark stores of it (documents, entries
   * and files, ops and their banked items, item errors, run state, maintenance
   * debt, links) in one step, `fence` first; returns what it deleted. Items of
   * another sink are that sink's: they stay. The caller holds the source's
   * leases (`sync:` and `maintain:`), so that nothing writes to it meanwhile.
   */
  readonly removeSource: <E>(
    sourceId: string,
    fence: Effect.Effect<void, E>
  ) => Effect.Effect<SourceContents, E | UnknownSource | StoreError>
}

export class OpsStore extends Context.Tag("tidemark/OpsStore")<OpsStore, OpsStoreShape>() {}
