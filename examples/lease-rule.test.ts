/**
 * A rule of one's own, simulated: two jobs of a program that must never run
 * at once share a tidemark lease, and the second waits for the first. On
 * `Tidemark.layerMemory` under `TestClock`: no database, no waiting in real time.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Duration, Effect, Fiber, TestClock } from "effect"
import { LeaseLock, Tidemark } from "tidemark"

describe("a nightly job and a manual rerun share one lease", () => {
  it.effect("the rerun waits for the job, then runs with a newer fencing token", () =>
    Effect.gen(function* () {
      const lock = yield* LeaseLock.LeaseLock
      const runs: Array<string> = []
      const job = (name: string, takes: Duration.DurationInput) => (lease: LeaseLock.Lease) =>
        Effect.gen(function* () {
          runs.push(`${name} starts (token ${lease.token})`)
          yield* Effect.sleep(takes)
          runs.push(`${name} ends`)
          return lease.token
        })
      const nightly = yield* Effect.fork(lock.withLease("job:nightly", job("nightly", "45 seconds")))
      yield* TestClock.adjust("1 second")
      // Started by hand while the nightly job runs: without waiting it would be refused.
      const refused = yield* Effect.flip(lock.withLease("job:nightly", job("rerun", "5 seconds")))
      expect(refused._tag).toBe("LockBusy")
      const rerun = yield* Effect.fork(lock.withLease("job:nightly", job("rerun", "5 seconds"), { wait: "5 minutes" }))
      // 45 s of job, renewed by its heartbeat all along; then the rerun's next poll gets the lease.
      yield* TestClock.adjust("50 seconds")
      const [first, second] = [yield* Fiber.join(nightly), yield* Fiber.join(rerun)]
      expect(second).toBeGreaterThan(first)
      expect(runs).toEqual([
        `nightly starts (token ${first})`,
        "nightly ends",
        `rerun starts (token ${second})`,
        "rerun ends"
      ])
    }).pipe(Effect.provide(Tidemark.layerMemory))
  )
})
