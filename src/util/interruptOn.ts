/**
 * Runs `work` until `stop` fails, then interrupts `work` and fails with
 * `stop`'s error. Unlike `Effect.raceFirst`, every path waits for `work`'s
 * finalizers to finish — also when the caller itself is interrupted (a
 * signal): the caller's own finalizers (releasing a lease, exiting the process)
 * must never run while the work is still flushing its checkpoint.
 */
import { Effect, Exit, Fiber } from "effect"

export const interruptOn = <A, E, R, E2, R2>(
  work: Effect.Effect<A, E, R>,
  stop: Effect.Effect<never, E2, R2>
): Effect.Effect<A, E | E2, R | R2> =>
  Effect.gen(function* () {
    const worker = yield* Effect.fork(work)
    const watcher = yield* Effect.fork(
      Effect.flatMap(Effect.flip(stop), (reason) => Effect.as(Fiber.interrupt(worker), reason))
    )
    const exit = yield* Fiber.await(worker).pipe(Effect.onInterrupt(() => Fiber.interrupt(worker)))
    const stopped = yield* Fiber.interrupt(watcher)
    if (Exit.isSuccess(stopped)) return yield* Effect.fail(stopped.value)
    return yield* exit
  })
