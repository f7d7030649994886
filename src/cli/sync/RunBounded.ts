/**
 * How the CLI runs a sync (any kind): bounded by `--timeout`, with a lost lease
 * and a timeout both turned into a partial run (exit 75, the banked count
 * given), an interruption by a signal said with the banked count, and a busy
 * lease turned into a skip (exit 0, "already running").
 */
import { Console, type Duration, Effect, Option, type Ref } from "effect"
import type { LockBusy, LockLost } from "../../lock/errors.js"
import type { Progress } from "../../sync/Progress.js"
import { formatDuration } from "../../util/humanDuration.js"
import { interruptOn } from "../../util/interruptOn.js"
import { PartialRun } from "../PartialRun.js"

export const runBounded = <A, E extends { readonly _tag: string }, R>(
  sync: Effect.Effect<A, E | LockBusy | LockLost, R>,
  options: {
    readonly timeout: Option.Option<Duration.Duration>
    readonly json: boolean
    readonly progress: Ref.Ref<Progress>
    /** What an interruption says (default: the banked count, and to rerun). */
    readonly interrupted?: (banked: number) => string
  }
) => {
  const banked = Effect.map(options.progress, (p) => p.banked)
  const partial = (reason: string) => Effect.flatMap(banked, (n) => Effect.fail(new PartialRun({ reason, banked: n })))
  // The timer says when it fires, before the batches in flight finish: a caller (a test)
  // can see the moment the sync stops taking new work.
  const stopAt = (duration: Duration.Duration) =>
    Effect.sleep(duration).pipe(
      Effect.zipRight(
        Effect.logWarning(`--timeout ${formatDuration(duration)} reached: stopping after the batches in flight`)
      ),
      Effect.zipRight(partial(`stopped after --timeout ${formatDuration(duration)}`))
    )
  const bounded: Effect.Effect<A, E | LockBusy | LockLost | PartialRun, R> = Option.isSome(options.timeout)
    ? interruptOn(sync, stopAt(options.timeout.value))
    : sync
  return bounded.pipe(
    // The count once the batches in flight are banked.
    Effect.catchTag("PartialRun", (stopped) => partial((stopped as PartialRun).reason)),
    // A run that held the lease and lost it stops with its progress saved: partial, never a skip.
    Effect.catchTag("LockLost", (lost) => partial((lost as LockLost).message)),
    Effect.onInterrupt(() =>
      Effect.flatMap(banked, (n) =>
        Effect.logWarning(options.interrupted?.(n) ?? `interrupted: ${n} items banked, rerun to continue`)
      )
    ),
    Effect.map(Option.some),
    Effect.catchTag("LockBusy", (error) => {
      const busy = error as LockBusy
      return Effect.as(
        options.json
          ? Console.log(
              JSON.stringify({ skipped: true, reason: "already running", holderPid: busy.pid, holderHost: busy.host })
            )
          : Console.log(`already running: ${busy.message}; skipped`),
        Option.none<A>()
      )
    })
  )
}
