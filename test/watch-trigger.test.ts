import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Option, Queue, TestClock } from "effect"
import type { Change } from "../src/sync/watch/FileWatcher.js"
import * as Watch from "../src/sync/watch/Watch.js"

const timings: Watch.WatchTimings = {
  debounce: Duration.millis(100),
  maxDelay: Duration.seconds(1),
  rescanEvery: Duration.minutes(5)
}
const paths = (...paths: Array<string>): Change => ({ _tag: "Paths", paths })
const relevant = (path: string) => !path.includes("/.git/")

/** Starts waiting for a trigger; returns the fiber and the queue to feed it. */
const waiting = Effect.gen(function* () {
  const changes = yield* Queue.unbounded<Change>()
  const fiber = yield* Effect.fork(Watch.nextTrigger(changes, relevant, timings))
  yield* TestClock.adjust(Duration.zero)
  return { changes, fiber }
})

const done = (fiber: Fiber.RuntimeFiber<Watch.Trigger>) => Effect.map(Fiber.poll(fiber), Option.isSome)

describe("watch: when a round starts (TestClock)", () => {
  it.effect("a round starts once changes have been quiet for the debounce", () =>
    Effect.gen(function* () {
      const { changes, fiber } = yield* waiting
      yield* Queue.offer(changes, paths("/n/a.md"))
      yield* TestClock.adjust(Duration.millis(60))
      yield* Queue.offer(changes, paths("/n/b.md", "/n/c.md"))
      yield* TestClock.adjust(Duration.millis(60))
      // 60 ms after the last change: not yet.
      expect(yield* done(fiber)).toBe(false)
      yield* TestClock.adjust(Duration.millis(40))
      expect(yield* Fiber.join(fiber)).toEqual({ reason: "change", changes: 3 })
    })
  )

  it.effect("changes that never settle still get a round, maxDelay after the first", () =>
    Effect.gen(function* () {
      const { changes, fiber } = yield* waiting
      // A change every 50 ms: the debounce (100 ms) alone would never end the wait.
      for (let i = 0; i < 20; i++) {
        yield* Queue.offer(changes, paths(`/n/${i}.md`))
        yield* TestClock.adjust(Duration.millis(50))
        if (i < 19) expect(yield* done(fiber)).toBe(false)
      }
      // 1000 ms after the first.
      expect(yield* done(fiber)).toBe(true)
      expect(yield* Fiber.join(fiber)).toEqual({ reason: "change", changes: 20 })
    })
  )

  it.effect("changes that do not concern the source start nothing; none for rescanEvery is a rescan", () =>
    Effect.gen(function* () {
      const { changes, fiber } = yield* waiting
      yield* Queue.offer(changes, paths("/n/.git/index"))
      yield* TestClock.adjust(Duration.seconds(10))
      expect(yield* done(fiber)).toBe(false)
      yield* TestClock.adjust(Duration.minutes(5))
      expect(yield* Fiber.join(fiber)).toEqual({ reason: "rescan", changes: 0 })
    })
  )

  it.effect("notifications the OS dropped make the round a rescan at once", () =>
    Effect.gen(function* () {
      const { changes, fiber } = yield* waiting
      yield* Queue.offer(changes, paths("/n/a.md"))
      yield* Queue.offer(changes, { _tag: "Overflow", reason: "inotify queue overflow" })
      yield* TestClock.adjust(Duration.millis(100))
      expect(yield* Fiber.join(fiber)).toEqual({ reason: "overflow", changes: 2 })
    })
  )
})
