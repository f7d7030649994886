/**
 * Where a source's run state lives: one row per source in `tidemark.run_state`,
 * written whole (so a row is all-or-nothing) and read back as raw JSON groups,
 * each decoded on its own by `RunState.restore`. Small, so the flush timing
 * can be simulated against the in-memory store under TestClock.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Context, type Effect, type Option } from "effect"

/** A stored row as read: groups not yet decoded (they may be anything). */
export interface StoredRunState {
  readonly identity: unknown
  readonly counts: unknown
  readonly rate: unknown
  /** When the last successful flush happened (epoch ms). */
  readonly flushedAt: number
}

export interface RunStateGroups {
  readonly identity: unknown
  readonly counts: unknown
  readonly rate: unknown
}

export interface RunStateStoreShape {
  /** The row of the source, if a flush ever succeeded. */
  readonly load: (sourceId: string) => Effect.Effect<Option.Option<StoredRunState>, SqlError>
  readonly save: (sourceId: string, groups: RunStateGroups, flushedAt: number) => Effect.Effect<void, SqlError>
}

export class RunStateStore extends Context.Tag("tidemark/RunStateStore")<RunStateStore, RunStateStoreShape>() {}
