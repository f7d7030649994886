/**
 * Fibers that never wait on anything take turns on microtasks (Effect's
 * scheduler falls back to a timer only after thousands of rounds), so the event
 * loop's timers and I/O can wait until the whole run is done. A long
 * synchronous stretch (a listing that looks nothing up, over folders the page
 * cache has dropped) would stall the lease's heartbeat past its deadline. A
 * loop calls the effect this returns once per step; it lets the event loop turn
 * once `every` has passed since it last did.
 */
import { Clock, Duration, Effect } from "effect"

export const eventLoopTurns = (every: Duration.DurationInput) =>
  Effect.map(Clock.currentTimeMillis, (start) => {
    const interval = Duration.toMillis(every)
    let lastTurn = start
    return Effect.flatMap(Clock.currentTimeMillis, (now) =>
      now - lastTurn < interval
        ? Effect.void
        : // A timer, however short, is only run by the event loop.
          Effect.zipRight(
            Effect.sleep(Duration.zero),
            Effect.flatMap(Clock.currentTimeMillis, (after) =>
              Effect.sync(() => {
                lastTurn = after
              })
            )
          )
    )
  })
