/**
 * Where a source's run state lives: one row per source in `tidemark.run_state`,
 * written whole (so a row is all-or-nothing) and read back as raw JSON groups,
 * each decoded on its own by `RunState.restore`. Small, so the flush timing
 * can be simulated against the in-memory store under TestClock.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Context, type Effect, type Option } from "effect"

/** A row's groups, as written, or as read back before decoding (they may be anything). */
export interface RunStateGroups {
  readonly identity: unknown
  readonly counts: unknown
  readonly rate: unknown
}

export interface RunStateStoreShape {
  /** The row of the source, if a flush ever succeeded. */
  readonly load: (sourceId: string) => Effect.Effect<Option.Option<RunStateGroups>, SqlError>
  /** Writes the whole row; `flushedAt` (epoch ms) is what `tidemark status` reports the age of. */
  readonly save: (sourceId: string, groups: RunStateGroups, flushedAt: number) => Effect.Effect<void, SqlError>
}

export class RunStateStore extends Context.Tag("tidemark/RunStateStore")<RunStateStore, RunStateStoreShape>() {}
