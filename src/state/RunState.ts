/**
 * The volatile progress of a source's sync — what op it is on, its phase,
 * cumulative counts, the measured rate — kept in memory and flushed to the
 * store by a scoped fiber every `flushEvery` (30 s) when it changed since the
 * last successful flush. Identity changes (op opened, target pinned, phase)
 * are written at once. A failed flush leaves the state dirty: the next tick
 * tries again. The scope's finalizer flushes once more, but nothing depends on
 * it: after SIGKILL the last periodic flush is what is restored.
 *
 * Restoring is all-or-nothing behind the row's existence (written whole, only
 * by a successful flush); each group is decoded with Schema on its own, and a
 * group that does not decode is replaced by a fresh one, with a warning.
 */
import { Clock, Duration, Effect, Either, Option, ParseResult, Ref, Schema } from "effect"
import { type RunStateGroups, RunStateStore } from "./RunStateStore.js"

const Count = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())

export const Identity = Schema.Struct({
  opId: Schema.Number.pipe(Schema.int(), Schema.positive()),
  target: Schema.Record({ key: Schema.String, value: Schema.String }),
  phase: Schema.String,
  /** When the op began (epoch ms), across restarts. */
  startedAt: Count
})
export type Identity = typeof Identity.Type

export const Counts = Schema.Struct({
  /** Items the op has to do in all (banked before this process included). */
  planned: Count,
  /** Items done (banked) in all, across restarts. */
  done: Count,
  /** Item failures across restarts. */
  failed: Count,
  bytes: Count,
  restarts: Count,
  /** When `done` last moved (epoch ms), or 0. */
  lastProgressAt: Count
})
export type Counts = typeof Counts.Type

export const Rate = Schema.Struct({
  /** Exponentially weighted average of the import rate: the ETA's calibration. */
  itemsPerSecond: Count,
  bytesPerSecond: Count,
  samples: Count
})
export type Rate = typeof Rate.Type

export interface RunStateValue {
  readonly identity: Identity
  readonly counts: Counts
  readonly rate: Rate
}

export const freshCounts: Counts = { planned: 0, done: 0, failed: 0, bytes: 0, restarts: 0, lastProgressAt: 0 }
export const freshRate: Rate = { itemsPerSecond: 0, bytesPerSecond: 0, samples: 0 }

/** Weight of the newest sample in the rate average. */
const smoothing = 0.2

/** The rate after one more sample of `items` and `bytes` done in `seconds`. */
export const nextRate = (rate: Rate, items: number, bytes: number, seconds: number): Rate => {
  if (seconds <= 0) return rate
  const weight = rate.samples === 0 ? 1 : smoothing
  return {
    itemsPerSecond: rate.itemsPerSecond + weight * (items / seconds - rate.itemsPerSecond),
    bytesPerSecond: rate.bytesPerSecond + weight * (bytes / seconds - rate.bytesPerSecond),
    samples: rate.samples + 1
  }
}

/** Seconds left at the measured rate, or null when there is no rate yet. */
export const etaSeconds = (counts: Counts, rate: Rate): number | null =>
  rate.itemsPerSecond > 0 ? Math.max(0, counts.planned - counts.done) / rate.itemsPerSecond : null

export interface RestoredRunState {
  readonly identity: Option.Option<Identity>
  readonly counts: Option.Option<Counts>
  readonly rate: Option.Option<Rate>
  /** Groups that did not decode (replaced by fresh ones). */
  readonly rejected: ReadonlyArray<string>
}

/** Decodes each stored group on its own; what does not decode is rejected, never thrown. */
export const decodeStored = (stored: RunStateGroups) => {
  const rejected: Array<{ group: string; reason: string }> = []
  const decode = <A, I>(group: string, schema: Schema.Schema<A, I>, value: unknown): Option.Option<A> =>
    Either.match(Schema.decodeUnknownEither(schema)(value), {
      onLeft: (error) => {
        rejected.push({ group, reason: ParseResult.TreeFormatter.formatErrorSync(error).split("\n").join(" ") })
        return Option.none()
      },
      onRight: Option.some
    })
  return {
    identity: decode("identity", Identity, stored.identity),
    counts: decode("counts", Counts, stored.counts),
    rate: decode("rate", Rate, stored.rate),
    rejected
  }
}

/** The source's last flushed run state, if any, with a warning per group that had to be dropped. */
export const restore = Effect.fn("RunState.restore")(function* (sourceId: string) {
  const store = yield* RunStateStore
  const stored = yield* store.load(sourceId)
  if (Option.isNone(stored)) return Option.none<RestoredRunState>()
  const decoded = decodeStored(stored.value)
  for (const { group, reason } of decoded.rejected) {
    yield* Effect.logWarning(
      `run state of ${sourceId}: the stored ${group} is unreadable, starting it afresh (${reason})`
    )
  }
  return Option.some<RestoredRunState>({ ...decoded, rejected: decoded.rejected.map((r) => r.group) })
})

export interface RunStatePolicy {
  readonly flushEvery: Duration.Duration
  /** Bound on the scope's final flush. */
  readonly finalFlushTimeout: Duration.Duration
}

export const defaultRunStatePolicy: RunStatePolicy = {
  flushEvery: Duration.seconds(30),
  finalFlushTimeout: Duration.seconds(2)
}

export interface RunState {
  readonly get: Effect.Effect<RunStateValue>
  /** A volatile change: written by the next periodic flush. */
  readonly update: (f: (value: RunStateValue) => RunStateValue) => Effect.Effect<void>
  /** An identity change (op, target, phase): written at once. */
  readonly updateIdentity: (f: (identity: Identity) => Identity) => Effect.Effect<void>
  /** Writes the state if it changed since the last successful flush; true when it wrote. */
  readonly flush: Effect.Effect<boolean>
  readonly dirty: Effect.Effect<boolean>
}

const groupsOf = (value: RunStateValue): RunStateGroups => ({
  identity: value.identity,
  counts: value.counts,
  rate: value.rate
})

/** Tracks `initial` for `sourceId`: flushed every `flushEvery` when dirty, and once more when the scope closes. */
export const make = Effect.fn("RunState.make")(function* (
  sourceId: string,
  initial: RunStateValue,
  policy: RunStatePolicy = defaultRunStatePolicy
) {
  const store = yield* RunStateStore
  const state = yield* Ref.make(initial)
  // Every change bumps `changes`; a flush records the count it wrote. Dirty: they differ.
  const changes = yield* Ref.make(1)
  const flushedChanges = yield* Ref.make(0)
  const oneFlushAtATime = yield* Effect.makeSemaphore(1)

  const dirty = Effect.zipWith(Ref.get(changes), Ref.get(flushedChanges), (made, flushed) => made > flushed)

  const flush = oneFlushAtATime.withPermits(1)(
    Effect.gen(function* () {
      if (!(yield* dirty)) return false
      const writing = yield* Ref.get(changes)
      const value = yield* Ref.get(state)
      const now = yield* Clock.currentTimeMillis
      const saved = yield* Effect.either(store.save(sourceId, groupsOf(value), now))
      if (Either.isLeft(saved)) {
        yield* Effect.logWarning(
          `run state flush of ${sourceId} failed, retrying at the next tick: ${saved.left.message}`
        )
        return false
      }
      yield* Ref.update(flushedChanges, (flushed) => Math.max(flushed, writing))
      return true
    })
  )

  const update = (f: (value: RunStateValue) => RunStateValue) =>
    Effect.zipRight(
      Ref.update(state, f),
      Ref.update(changes, (n) => n + 1)
    )

  yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(policy.flushEvery), flush)))
  yield* Effect.addFinalizer(() => Effect.ignore(Effect.timeout(flush, policy.finalFlushTimeout)))

  return {
    get: Ref.get(state),
    update,
    updateIdentity: (f) =>
      Effect.zipRight(
        update((value) => ({ ...value, identity: f(value.identity) })),
        flush
      ),
    flush,
    dirty
  } satisfies RunState
})
