/**
 * The behaviour every LeaseStore must have, and the LeaseLock behaviour built
 * on it, written once and run against both stores: in memory under TestClock,
 * and PostgreSQL. `Advance` moves the store's time forward: the TestClock for
 * the memory store; for PostgreSQL, the lease rows are moved into the past by
 * the same amount (the database clock itself cannot be moved), which is what
 * the passing of time means to a lease.
 */
import { expect, type Vitest } from "@effect/vitest"
import {
  Cause,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Queue,
  Ref,
  type Scope,
  TestClock
} from "effect"
import type { HolderInfo } from "../../src/lock/errors.js"
import { LeaseLock } from "../../src/lock/LeaseLock.js"
import * as LeaseLockModule from "../../src/lock/LeaseLock.js"
import { LeaseStore } from "../../src/lock/LeaseStore.js"
import { holderId } from "../../src/lock/localHolder.js"
import { defaultTimings } from "../../src/lock/LeaseTimings.js"
import { makeProbe, probed } from "./LeaseStoreProbe.js"

export class Advance extends Context.Tag("test/Advance")<
  Advance,
  (by: Duration.DurationInput) => Effect.Effect<void>
>() {}

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

let counter = 0
const uniqueName = (label: string) => `test:${label}:${++counter}:${Math.random().toString(36).slice(2, 8)}`
const holder = (id: string): HolderInfo => ({ holder: `holder-${id}`, host: "test-host", pid: 4242 })
const ttl = defaultTimings.ttl

const advance = (by: Duration.DurationInput) => Effect.flatMap(Advance, (f) => f(by))

const granted = (name: string, who: HolderInfo) =>
  Effect.flatMap(LeaseStore, (store) => store.tryAcquire(name, who, ttl)).pipe(
    Effect.map((result) => {
      expect(result._tag).toBe("Granted")
      return result._tag === "Granted" ? result.token : -1
    })
  )

const busy = (name: string, who: HolderInfo) =>
  Effect.flatMap(LeaseStore, (store) => store.tryAcquire(name, who, ttl)).pipe(
    Effect.map((result) => {
      expect(result._tag).toBe("Busy")
      return result._tag === "Busy" ? result.current : undefined
    })
  )

type Provide<R> = <A, E>(self: Effect.Effect<A, E, LeaseStore | Advance | Scope.Scope>) => Effect.Effect<A, E, R>

export const leaseStoreContract = <R>(it: Vitest.MethodsNonLive<R, boolean>, provide: Provide<R>) => {
  it.effect("grants a free lease, and reports the holder to the next comer", () =>
    provide(
      Effect.gen(function* () {
        const name = uniqueName("grant")
        yield* granted(name, holder("a"))
        const current = yield* busy(name, holder("b"))
        expect(current).toMatchObject({ name, holder: "holder-a", host: "test-host", pid: 4242 })
        expect(current?.expiresInMillis).toBeGreaterThan(Duration.toMillis(ttl) - 5_000)
      })
    )
  )

  it.effect("refuses a takeover before expiry and grants it after, with a higher token", () =>
    provide(
      Effect.gen(function* () {
        const name = uniqueName("takeover")
        const first = yield* granted(name, holder("a"))
        yield* advance(Duration.subtract(ttl, Duration.seconds(1)))
        yield* busy(name, holder("b"))
        yield* advance(Duration.seconds(2))
        const second = yield* granted(name, holder("b"))
        expect(second).toBeGreaterThan(first)
      })
    )
  )

  it.effect("tokens keep rising across releases", () =>
    provide(
      Effect.gen(function* () {
        const store = yield* LeaseStore
        const name = uniqueName("tokens")
        const tokens: Array<number> = []
        for (const id of ["a", "b", "c"]) {
          const token = yield* granted(name, holder(id))
          tokens.push(token)
          expect(yield* store.release(name, `holder-${id}`, token)).toBe(true)
        }
        expect([...tokens].sort((x, y) => x - y)).toEqual(tokens)
        expect(new Set(tokens).size).toBe(3)
      })
    )
  )

  it.effect("a renewal by the holder extends the lease; a renewal by a superseded holder is refused", () =>
    provide(
      Effect.gen(function* () {
        const store = yield* LeaseStore
        const name = uniqueName("renew")
        const token = yield* granted(name, holder("a"))
        yield* advance("20 seconds")
        expect(yield* store.renew(name, "holder-a", token, ttl)).toBe("renewed")
        yield* advance("20 seconds")
        // 40 s after the grant, 20 s after the renewal: still held.
        yield* busy(name, holder("b"))
        yield* advance("11 seconds")
        const next = yield* granted(name, holder("b"))
        expect(yield* store.renew(name, "holder-a", token, ttl)).toBe("taken-over")
        expect(yield* store.renew(name, "holder-b", next, ttl)).toBe("renewed")
        yield* store.forceRelease(name)
        expect(yield* store.renew(name, "holder-b", next, ttl)).toBe("released")
      })
    )
  )

  it.effect("releasing a lease that was taken over removes nothing", () =>
    provide(
      Effect.gen(function* () {
        const store = yield* LeaseStore
        const name = uniqueName("release")
        const old = yield* granted(name, holder("a"))
        yield* advance("31 seconds")
        yield* granted(name, holder("b"))
        expect(yield* store.release(name, "holder-a", old)).toBe(false)
        const current = yield* busy(name, holder("c"))
        expect(current?.holder).toBe("holder-b")
      })
    )
  )

  it.effect("the fence passes for the current token only", () =>
    provide(
      Effect.gen(function* () {
        const store = yield* LeaseStore
        const name = uniqueName("fence")
        const old = yield* granted(name, holder("a"))
        yield* store.fence(name, old)
        yield* advance("31 seconds")
        const next = yield* granted(name, holder("b"))
        const refused = yield* Effect.flip(store.fence(name, old))
        expect(refused).toMatchObject({ _tag: "FencedOut", token: old, currentToken: next })
        yield* store.release(name, "holder-b", next)
        expect(yield* Effect.flip(store.fence(name, next))).toMatchObject({ _tag: "FencedOut", currentToken: null })
      })
    )
  )

  it.effect("a takeover of a known holder's lease succeeds only while it is still exactly that holder's", () =>
    provide(
      Effect.gen(function* () {
        const store = yield* LeaseStore
        const name = uniqueName("takeover-known")
        const token = yield* granted(name, holder("a"))
        const stale = { holder: "holder-a", token: token - 1 }
        expect(Option.isNone(yield* store.takeOver(name, stale, holder("b"), ttl))).toBe(true)
        const next = Option.getOrThrow(yield* store.takeOver(name, { holder: "holder-a", token }, holder("b"), ttl))
        expect(next).toBeGreaterThan(token)
        expect(Option.isNone(yield* store.takeOver(name, { holder: "holder-a", token }, holder("c"), ttl))).toBe(true)
        expect((yield* busy(name, holder("d")))?.holder).toBe("holder-b")
      })
    )
  )

  it.effect("lists leases with their ages, and an operator can force one out", () =>
    provide(
      Effect.gen(function* () {
        const store = yield* LeaseStore
        const name = uniqueName("list")
        const token = yield* granted(name, holder("a"))
        yield* advance("5 seconds")
        const row = (yield* store.list).find((r) => r.name === name)
        expect(row).toMatchObject({ holder: "holder-a", token })
        expect(row!.ageMillis).toBeGreaterThanOrEqual(5_000)
        expect(row!.expiresInMillis).toBeLessThanOrEqual(25_000)
        const removed = yield* store.forceRelease(name)
        expect(Option.getOrThrow(removed)).toMatchObject({ name, holder: "holder-a", token })
        expect((yield* store.list).some((r) => r.name === name)).toBe(false)
        expect(Option.isNone(yield* store.forceRelease(name))).toBe(true)
      })
    )
  )
}

/**
 * LeaseLock's timing rules, simulated under TestClock over a store. A probe
 * records every renewal outcome, so the tests wait for the store's real I/O
 * (PostgreSQL) after moving the clock, without any wall-clock sleep.
 */
const withProbe =
  <R>(provide: Provide<R>) =>
  <A, E>(
    f: (
      probe: Effect.Effect.Success<typeof makeProbe>
    ) => Effect.Effect<A, E, LeaseLock | LeaseStore | Advance | Scope.Scope>
  ) =>
    provide(
      Effect.gen(function* () {
        const probe = yield* makeProbe
        const lockLayer = LeaseLockModule.layer.pipe(Layer.provide(probed(probe)))
        return yield* f(probe).pipe(Effect.provide(lockLayer))
      })
    )

/** Forks `work` under the lease and returns once the lease is held (the grant may be real I/O). */
const startUnderLease = <A, E>(name: string, work: Effect.Effect<A, E> = Effect.never as Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const lock = yield* LeaseLock
    const started = yield* Deferred.make<void>()
    const fiber = yield* Effect.fork(
      lock.withLease(name, () => Effect.zipRight(Deferred.succeed(started, undefined), work))
    )
    yield* Deferred.await(started)
    return fiber
  })

export const leaseLockBehaviour = <R>(it: Vitest.MethodsNonLive<R, boolean>, provide: Provide<R>) => {
  const probing = withProbe(provide)

  it.effect("renews every ttl/3 while the work runs, and releases when it ends", () =>
    probing((probe) =>
      Effect.gen(function* () {
        const name = uniqueName("cadence")
        const work = yield* startUnderLease(name)
        yield* TestClock.adjust("9 seconds")
        expect(yield* Queue.size(probe.renewals)).toBe(0)
        for (let renewal = 1; renewal <= 3; renewal++) {
          yield* TestClock.adjust(renewal === 1 ? "1 second" : "10 seconds")
          expect(yield* Queue.take(probe.renewals)).toBe("renewed")
        }
        // Thirty seconds in, three renewals later, a rival still finds it held.
        yield* busy(name, holder("rival"))
        yield* Fiber.interrupt(work)
        yield* granted(name, holder("rival"))
      })
    )
  )

  it.effect("a lease that cannot be renewed is lost at the deadline, and the work is interrupted", () =>
    probing((probe) =>
      Effect.gen(function* () {
        const name = uniqueName("deadline")
        const interrupted = yield* Ref.make(false)
        yield* Ref.set(probe.failRenewals, true)
        const work = yield* startUnderLease(
          name,
          Effect.never.pipe(Effect.onInterrupt(() => Ref.set(interrupted, true)))
        )
        // Renewals at 10 s, then every 2 s: all fail.
        yield* TestClock.adjust("10 seconds")
        expect(yield* Queue.take(probe.renewals)).toBe("failed")
        for (let t = 12; t < 20; t += 2) {
          yield* TestClock.adjust("2 seconds")
          expect(yield* Queue.take(probe.renewals)).toBe("failed")
        }
        expect(Option.isNone(yield* Fiber.poll(work))).toBe(true)
        yield* TestClock.adjust("2 seconds") // t = 20 s: the deadline
        const exit = yield* Fiber.await(work)
        expect(failureOf(exit)).toMatchObject({ _tag: "LockLost", name, reason: "deadline-passed" })
        expect(yield* Ref.get(interrupted)).toBe(true)
      })
    )
  )

  it.effect("a renewal that finds the lease taken stops the work at once", () =>
    probing((probe) =>
      Effect.gen(function* () {
        const store = yield* LeaseStore
        const name = uniqueName("stolen")
        const work = yield* startUnderLease(name)
        yield* TestClock.adjust("1 second")
        // An operator forces the lease out and a rival takes it.
        yield* store.forceRelease(name)
        yield* granted(name, holder("rival"))
        yield* TestClock.adjust("9 seconds")
        expect(yield* Queue.take(probe.renewals)).toBe("refused")
        const exit = yield* Fiber.await(work)
        expect(failureOf(exit)).toMatchObject({ _tag: "LockLost", name, reason: "taken-over" })
        // Closing the lost lease's scope removed nothing: the rival still holds it.
        expect((yield* busy(name, holder("third")))?.holder).toBe("holder-rival")
      })
    )
  )
}

/**
 * A lease left by a process of this machine that no longer exists is taken
 * over at once; one held by another machine's process waits for its expiry.
 */
export const abandonedLeaseBehaviour = <R>(
  it: Vitest.MethodsNonLive<R, boolean>,
  provide: Provide<R>,
  deadPid: number
) => {
  const probing = withProbe(provide)

  it.effect("a lease abandoned by a dead local process is taken over at once", () =>
    probing(() =>
      Effect.gen(function* () {
        const lock = yield* LeaseLock
        const name = uniqueName("abandoned")
        const dead = { holder: holderId(deadPid, "gone"), host: "this-host", pid: deadPid }
        const old = yield* granted(name, dead)
        const token = yield* lock.withLease(name, (lease) => Effect.succeed(lease.token))
        expect(token).toBeGreaterThan(old)
      })
    )
  )

  it.effect("a lease held by another machine's process is not taken over before it expires", () =>
    probing(() =>
      Effect.gen(function* () {
        const lock = yield* LeaseLock
        const name = uniqueName("remote")
        yield* granted(name, { holder: `another-node:${deadPid}:x`, host: "elsewhere", pid: deadPid })
        const refused = yield* Effect.flip(lock.withLease(name, () => Effect.void))
        expect(refused).toMatchObject({ _tag: "LockBusy", host: "elsewhere" })
      })
    )
  )
}

/**
 * Waiting for a busy lease, under TestClock. Memory store only: a poll is a
 * store call at a time the test does not know in advance, so with real I/O
 * the test could not tell when to move the clock. The real-process tests
 * cover waiting against PostgreSQL.
 */
export const leaseWaitBehaviour = <R>(it: Vitest.MethodsNonLive<R, boolean>, provide: Provide<R>) => {
  const probing = withProbe(provide)

  it.effect("a busy lease fails at once with the holder, or is waited for", () =>
    probing(() =>
      Effect.gen(function* () {
        const lock = yield* LeaseLock
        const name = uniqueName("wait")
        const first = yield* Effect.fork(lock.withLease(name, () => Effect.sleep("5 seconds")))
        yield* TestClock.adjust("1 second")
        const refused = yield* Effect.flip(lock.withLease(name, () => Effect.void))
        expect(refused).toMatchObject({ _tag: "LockBusy", name, pid: process.pid })
        const waiter = yield* Effect.fork(
          lock.withLease(name, (lease) => Effect.succeed(lease.token), { wait: "1 minute" })
        )
        yield* TestClock.adjust("4 seconds")
        yield* Fiber.join(first)
        // Released at 5 s: the waiter's next poll (at most 2 s later) gets it.
        yield* TestClock.adjust("2 seconds")
        expect(yield* Fiber.join(waiter)).toBeGreaterThan(0)
      })
    )
  )

  it.effect("waiting is bounded by its timeout", () =>
    probing(() =>
      Effect.gen(function* () {
        const lock = yield* LeaseLock
        const name = uniqueName("wait-timeout")
        yield* Effect.fork(lock.withLease(name, () => Effect.never))
        yield* TestClock.adjust("1 second")
        const waiter = yield* Effect.fork(lock.withLease(name, () => Effect.void, { wait: "10 seconds" }))
        yield* TestClock.adjust("15 seconds")
        const exit = yield* Fiber.await(waiter)
        expect(failureOf(exit)).toMatchObject({ _tag: "LockBusy", name })
      })
    )
  )
}
