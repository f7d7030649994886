/**
 * Watch mode: a source kept in sync by rounds under one lease held for the
 * whole watch. The watcher subscribes before the first round (a change during
 * it is not missed: it triggers the next); then each round waits for relevant
 * changes to settle (`debounce` of quiet, at most `maxDelay` after the first)
 * or for `rescanEvery` without any (events the OS dropped are caught there, and
 * an overflow the watcher reports triggers one at once).
 *
 * A round is one whole sync with every guarantee of a single one (fenced
 * writes, checkpoints, the mass-change guard: a refused round ends the watch
 * with its error), retried on transient failures with its own budget, so a
 * database restart between or during rounds is ridden out. A signal stops the
 * watch after the round in flight; the first round may be a large import, and
 * stops like any sync.
 */
import { Clock, Duration, Effect, Fiber, Option, Queue, Ref } from "effect"
import type { Lease } from "../../lock/LeaseLock.js"
import { LeaseLock } from "../../lock/LeaseLock.js"
import { initialProgress, type Progress } from "../Progress.js"
import { leaseName, type LeaseOptions, retryUnderLease } from "../UnderLease.js"
import { type Change, FileWatcher } from "./FileWatcher.js"

export interface WatchTimings {
  /** Quiet after the last relevant change before a round starts. */
  readonly debounce: Duration.Duration
  /** Longest wait after the first change of a round (a folder that never goes quiet still syncs). */
  readonly maxDelay: Duration.Duration
  /** A round after this long without changes. */
  readonly rescanEvery: Duration.Duration
}

export const defaultWatchTimings: WatchTimings = {
  debounce: Duration.millis(100),
  maxDelay: Duration.seconds(1),
  rescanEvery: Duration.minutes(5)
}

export type Reason = "first" | "change" | "rescan" | "overflow"

export interface Trigger {
  readonly reason: Reason
  /** Relevant paths reported (a path changed twice counts twice). */
  readonly changes: number
}

export interface RoundReport<S> extends Trigger {
  readonly round: number
  readonly seconds: number
  readonly summary: S
}

const relevantCount = (change: Change, relevant: (path: string) => boolean) =>
  change._tag === "Overflow" ? 1 : change.paths.filter(relevant).length

/** The next change that concerns the source (an overflow always does). */
const takeRelevant = (changes: Queue.Dequeue<Change>, relevant: (path: string) => boolean) =>
  Effect.repeat(Queue.take(changes), { until: (change) => relevantCount(change, relevant) > 0 })

/** Why the next round runs, once it is time for it. */
export const nextTrigger = Effect.fn("Watch.nextTrigger")(function* (
  changes: Queue.Dequeue<Change>,
  relevant: (path: string) => boolean,
  timings: WatchTimings
) {
  const first = yield* takeRelevant(changes, relevant).pipe(Effect.timeoutOption(timings.rescanEvery))
  if (Option.isNone(first)) return { reason: "rescan", changes: 0 } satisfies Trigger
  let overflow = first.value._tag === "Overflow"
  let count = relevantCount(first.value, relevant)
  const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(timings.maxDelay)
  for (;;) {
    const left = deadline - (yield* Clock.currentTimeMillis)
    if (left <= 0) break
    const next = yield* takeRelevant(changes, relevant).pipe(
      Effect.timeoutOption(Duration.min(timings.debounce, Duration.millis(left)))
    )
    if (Option.isNone(next)) break
    overflow ||= next.value._tag === "Overflow"
    count += relevantCount(next.value, relevant)
  }
  return { reason: overflow ? "overflow" : "change", changes: count } satisfies Trigger
})

export interface WatchOptions<S, E, R> {
  readonly sourceId: string
  /** The folder the watcher subscribes to, what it skips, and which changed paths concern the source. */
  readonly dir: string
  readonly ignore: ReadonlyArray<string>
  readonly relevant: (path: string) => boolean
  readonly timings?: WatchTimings
  readonly lease?: LeaseOptions
  /** The round in flight's progress (reset at the start of each). */
  readonly progress: Ref.Ref<Progress>
  /** One sync under the watch's lease. */
  readonly round: (lease: Lease, progress: Ref.Ref<Progress>) => Effect.Effect<S, E, R>
  /** Around the first round (e.g. a progress display). */
  readonly aroundFirst?: <A, E1, R1>(
    first: Effect.Effect<A, E1, R1>,
    progress: Ref.Ref<Progress>
  ) => Effect.Effect<A, E1, R1>
  readonly onRound: (report: RoundReport<S>) => Effect.Effect<void, E, R>
}

/** Runs until it fails (a refused round, a lost lease) or is interrupted; never succeeds. */
export const watch = Effect.fn("Watch.watch")(function* <S, E, R>(options: WatchOptions<S, E, R>) {
  const lock = yield* LeaseLock
  const watcher = yield* FileWatcher
  const timings = options.timings ?? defaultWatchTimings
  const leaseOptions = options.lease ?? {}
  return yield* lock.withLease(
    leaseName(options.sourceId),
    (lease) =>
      Effect.scoped(
        Effect.gen(function* () {
          const changes = yield* watcher.watch(options.dir, { ignore: options.ignore })
          const progress = options.progress
          const runRound = (round: number, trigger: Trigger) =>
            Effect.gen(function* () {
              yield* Ref.set(progress, initialProgress)
              const started = yield* Clock.currentTimeMillis
              const sync = retryUnderLease(lease, progress, options.round(lease, progress))
              const summary = yield* round === 1 && options.aroundFirst !== undefined
                ? options.aroundFirst(sync, progress)
                : sync
              const seconds = ((yield* Clock.currentTimeMillis) - started) / 1000
              yield* options.onRound({ ...trigger, round, seconds, summary })
            }).pipe(
              // Each round is a trace of its own: a watch runs for days, and a trace must end to be seen.
              Effect.withSpan("tidemark.watch.round", {
                root: true,
                attributes: {
                  "tidemark.source": options.sourceId,
                  "tidemark.round": round,
                  "tidemark.trigger": trigger.reason
                }
              })
            )
          yield* runRound(1, { reason: "first", changes: 0 })
          for (let round = 2; ; round++) {
            const trigger = yield* nextTrigger(changes, options.relevant, timings)
            // In a fiber of its own, so that an interruption of the watch waits for it to end
            // (the round itself stays interruptible within: its races need that).
            const inFlight = yield* Effect.forkScoped(runRound(round, trigger))
            yield* Fiber.join(inFlight).pipe(Effect.onInterrupt(() => Fiber.await(inFlight)))
          }
        })
      ),
    {
      ...(leaseOptions.wait === undefined ? {} : { wait: leaseOptions.wait }),
      ...(leaseOptions.leaseTimings === undefined ? {} : { timings: leaseOptions.leaseTimings })
    }
  )
})
