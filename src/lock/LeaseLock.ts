/**
 * Single-flight through leases. A lease is a scoped resource: acquiring it
 * grants (or waits for) the lease and forks a heartbeat fiber into the same
 * scope; closing the scope stops the heartbeat, then releases the lease.
 *
 * The heartbeat renews every `renewEvery`. A renewal that finds the lease
 * taken, or no successful renewal for `deadline`, makes the lease lost, and
 * `withLease` interrupts the work with `LockLost` — while the lease has not yet
 * expired for anybody else (`deadline < ttl`). Writes made under a lease call
 * `lease.fence` in their transaction, which refuses them once the token moved.
 */
import * as os from "node:os"
import { randomBytes } from "node:crypto"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Context, Deferred, Duration, Effect, Either, Layer, Metric, Option, Schedule, type Scope } from "effect"
import * as Metrics from "../telemetry/Metrics.js"
import { retryTransient } from "../db/Transient.js"
import { interruptOn } from "../util/interruptOn.js"
import { type FencedOut, type HolderInfo, LockBusy, LockLost } from "./errors.js"
import { LeaseStore, type LeaseRow } from "./LeaseStore.js"
import { holderId, isAbandonedLocally, markHeld, markReleased } from "./localHolder.js"
import { deadlinePassed, defaultTimings, type LeaseTimings, timeLeft } from "./LeaseTimings.js"

export interface Lease {
  readonly name: string
  readonly holder: string
  readonly token: number
  /** Fails with `LockLost` once the lease is lost; never succeeds. */
  readonly lost: Effect.Effect<never, LockLost>
  /** Asserts, inside the caller's write transaction, that the lease is still this one. */
  readonly fence: Effect.Effect<void, FencedOut | SqlError>
  /**
   * Asks the store whether the lease is still this one, and fails with
   * `LockLost` if not: for a caller that failed and must tell a lost lease from
   * its own failure before trying again.
   */
  readonly verify: Effect.Effect<void, LockLost | SqlError>
}

export interface AcquireOptions {
  readonly timings?: LeaseTimings
  /** Wait up to this long for a busy lease, polling with backoff. Default: fail at once with `LockBusy`. */
  readonly wait?: Duration.DurationInput
  /** Longest pause between two polls while waiting. */
  readonly maxPoll?: Duration.DurationInput
}

export class LeaseLock extends Context.Tag("tidemark/LeaseLock")<
  LeaseLock,
  {
    readonly acquire: (name: string, options?: AcquireOptions) => Effect.Effect<Lease, LockBusy | SqlError, Scope.Scope>
    readonly withLease: <A, E, R>(
      name: string,
      work: (lease: Lease) => Effect.Effect<A, E, R>,
      options?: AcquireOptions
    ) => Effect.Effect<A, E | LockBusy | LockLost | SqlError, R>
    readonly list: Effect.Effect<ReadonlyArray<LeaseRow>, SqlError>
    readonly forceRelease: (name: string) => Effect.Effect<Option.Option<LeaseRow>, SqlError>
  }
>() {}

const newHolder = (): HolderInfo => ({
  holder: holderId(process.pid, randomBytes(6).toString("hex")),
  host: os.hostname(),
  pid: process.pid
})

/** Pauses between polls for a busy lease: 200 ms growing to `maxPoll`, for at most `wait`. */
const pollSchedule = (wait: Duration.DurationInput, maxPoll: Duration.DurationInput) => {
  const cap = Duration.decode(maxPoll)
  return Schedule.exponential("200 millis", 1.5).pipe(
    Schedule.modifyDelay((delay) => Duration.min(delay, cap)),
    Schedule.upTo(wait)
  )
}

export const make = Effect.gen(function* () {
  const store = yield* LeaseStore

  /** One grant attempt; remembers when it was sent, the earliest the store could have started the ttl. */
  const tryGrant = (name: string, holder: HolderInfo, timings: LeaseTimings) =>
    Effect.gen(function* () {
      const sentAt = yield* Clock.currentTimeMillis
      const result = yield* store.tryAcquire(name, holder, timings.ttl).pipe(retryTransient())
      if (result._tag === "Busy") {
        const { current } = result
        if (isAbandonedLocally(current.holder, current.pid)) {
          const taken = yield* store.takeOver(name, current, holder, timings.ttl).pipe(retryTransient())
          if (Option.isSome(taken)) {
            yield* Effect.logInfo(`took over lease ${name} from pid ${current.pid}, which no longer exists`)
            return { token: taken.value, grantedAt: sentAt }
          }
        }
        return yield* new LockBusy({
          name,
          holder: current.holder,
          host: current.host,
          pid: current.pid,
          token: current.token,
          ageMillis: current.ageMillis,
          sinceHeartbeatMillis: current.sinceHeartbeatMillis
        })
      }
      return { token: result.token, grantedAt: sentAt }
    })

  /** The lease is lost: counted, traced (a span of its own, so a trace shows when), and the work told. */
  const loseLease = (lost: Deferred.Deferred<never, LockLost>, error: LockLost) =>
    Effect.zipRight(
      Metric.increment(Metric.tagged(Metrics.leaseLosses, "reason", error.reason)),
      Deferred.fail(lost, error).pipe(
        Effect.withSpan("tidemark.lease.lost", {
          attributes: { "tidemark.lease": error.name, "tidemark.token": error.token, "tidemark.reason": error.reason }
        })
      )
    )

  // Untraced: a span as long as the lease would be exported only when it ends (never, after a
  // crash); each renewal is a span of its own under the acquire.
  const heartbeat = Effect.fnUntraced(function* (
    name: string,
    holder: HolderInfo,
    grant: { readonly token: number; readonly grantedAt: number },
    timings: LeaseTimings,
    lost: Deferred.Deferred<never, LockLost>
  ) {
    const failedRetryEvery = Duration.millis(Math.max(1, Duration.toMillis(timings.renewEvery) / 5))
    let lastRenewed = grant.grantedAt
    let lastFailed = false
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      yield* Effect.sleep(
        Duration.min(lastFailed ? failedRetryEvery : timings.renewEvery, timeLeft(lastRenewed, now, timings))
      )
      const attemptAt = yield* Clock.currentTimeMillis
      if (deadlinePassed(lastRenewed, attemptAt, timings)) {
        return yield* loseLease(lost, new LockLost({ name, token: grant.token, reason: "deadline-passed" }))
      }
      const outcome = yield* store.renew(name, holder.holder, grant.token, timings.ttl).pipe(
        Effect.timeoutFail({
          duration: timeLeft(lastRenewed, attemptAt, timings),
          onTimeout: () => "renewal timed out" as const
        }),
        Effect.tap((renewed) => Effect.annotateCurrentSpan("tidemark.outcome", renewed)),
        Effect.withSpan("tidemark.lease.renew", {
          attributes: { "tidemark.lease": name, "tidemark.token": grant.token }
        }),
        Effect.either
      )
      if (Either.isRight(outcome)) {
        if (outcome.right !== "renewed") {
          return yield* loseLease(lost, new LockLost({ name, token: grant.token, reason: outcome.right }))
        }
        yield* Metric.increment(Metrics.leaseRenewals)
        lastRenewed = attemptAt
        lastFailed = false
      } else {
        lastFailed = true
        const reason = typeof outcome.left === "string" ? outcome.left : outcome.left.message
        yield* Effect.logWarning(`could not renew lease ${name}: ${reason}; retrying`)
      }
    }
  })

  const release = (name: string, holder: HolderInfo, token: number) =>
    store.release(name, holder.holder, token).pipe(
      retryTransient({ base: "100 millis", cap: "1 second", retries: 3 }),
      Effect.timeout("5 seconds"),
      Effect.tap((released) =>
        released ? Effect.void : Effect.logDebug(`lease ${name} (token ${token}) was no longer ours to release`)
      ),
      Effect.catchAll((error) =>
        Effect.logWarning(`could not release lease ${name}: ${error.message}; it expires on its own`)
      )
    )

  const acquire = Effect.fn("tidemark.lease.acquire")(function* (name: string, options: AcquireOptions = {}) {
    yield* Effect.annotateCurrentSpan("tidemark.lease", name)
    const timings = options.timings ?? defaultTimings
    const holder = newHolder()
    // Marked before the grant is even asked for, and unmarked after the release: never
    // can another fiber of this process mistake this lease for an abandoned one.
    yield* Effect.acquireRelease(
      Effect.sync(() => markHeld(holder.holder)),
      () => Effect.sync(() => markReleased(holder.holder))
    )
    const attempt = tryGrant(name, holder, timings)
    const grant = yield* Effect.acquireRelease(
      options.wait === undefined
        ? attempt
        : attempt.pipe(
            Effect.retry({
              schedule: pollSchedule(options.wait, options.maxPoll ?? "2 seconds"),
              while: (error) => error._tag === "LockBusy"
            })
          ),
      ({ token }) => release(name, holder, token)
    )
    const lost = yield* Deferred.make<never, LockLost>()
    yield* Effect.forkScoped(heartbeat(name, holder, grant, timings, lost))
    yield* Effect.logDebug(`acquired lease ${name} (token ${grant.token})`)
    yield* Effect.annotateCurrentSpan("tidemark.token", grant.token)
    return {
      name,
      holder: holder.holder,
      token: grant.token,
      lost: Deferred.await(lost),
      verify: Effect.flatMap(store.find(name), (row) =>
        Option.isSome(row) && row.value.holder === holder.holder && row.value.token === grant.token
          ? Effect.void
          : Effect.fail(
              new LockLost({ name, token: grant.token, reason: Option.isSome(row) ? "taken-over" : "released" })
            )
      ),
      // A write transaction silent for a renewal interval is ended by the server, well
      // before the lease could expire and a successor would have to wait for its row lock.
      fence: store.fence(name, grant.token, timings.renewEvery)
    } satisfies Lease
  })

  const withLease = <A, E, R>(name: string, work: (lease: Lease) => Effect.Effect<A, E, R>, options?: AcquireOptions) =>
    Effect.scoped(Effect.flatMap(acquire(name, options), (lease) => interruptOn(work(lease), lease.lost)))

  return LeaseLock.of({ acquire, withLease, list: store.list, forceRelease: store.forceRelease })
})

export const layer: Layer.Layer<LeaseLock, never, LeaseStore> = Layer.effect(LeaseLock, make)
