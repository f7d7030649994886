/**
 * Running a source's sync under its lease: the lease is taken once and held
 * for the whole run, and transient failures retry the work inside it (each
 * attempt resumes from what was written). A run that finds its lease gone —
 * its fence refused a write, or the lease check after a failure says someone
 * else has it — ends with `LockLost`: a retry never takes the lease again, so
 * a run that lost its lease can never turn into "already running; skipped".
 */
import { type Duration, Effect, Ref } from "effect"
import { defaultRetryPolicy, isTransient, shortReason, transientRetrySchedule } from "../db/Transient.js"
import { LockLost } from "../lock/errors.js"
import { type Lease, LeaseLock } from "../lock/LeaseLock.js"
import type { LeaseTimings } from "../lock/LeaseTimings.js"
import type { Progress } from "./Progress.js"

export interface LeaseOptions {
  /** Wait this long for a busy lease instead of failing with `LockBusy` at once. */
  readonly wait?: Duration.DurationInput
  readonly leaseTimings?: LeaseTimings
}

export const leaseName = (sourceId: string) => `sync:${sourceId}`

export const underLease = <A, E, R>(
  sourceId: string,
  options: LeaseOptions,
  progress: Ref.Ref<Progress>,
  attempt: (lease: Lease) => Effect.Effect<A, E, R>
) =>
  Effect.flatMap(LeaseLock, (lock) =>
    lock.withLease(leaseName(sourceId), (lease) => retryUnderLease(lease, progress, attempt(lease)), {
      ...(options.wait === undefined ? {} : { wait: options.wait }),
      ...(options.leaseTimings === undefined ? {} : { timings: options.leaseTimings })
    })
  )

/**
 * Work under a lease the caller holds, retried on transient failures (each
 * attempt resumes from what was written) — unless the lease turns out lost,
 * which ends it with `LockLost`. One retry budget per call: a watch calls it
 * once per round.
 */
export const retryUnderLease = <A, E, R>(lease: Lease, progress: Ref.Ref<Progress>, attempt: Effect.Effect<A, E, R>) =>
  attempt.pipe(
    // A write refused by the fence: someone else holds the lease now.
    Effect.catchIf(
      (error): error is E & { readonly _tag: "FencedOut" } =>
        (error as { readonly _tag?: unknown })._tag === "FencedOut",
      () => Effect.fail(new LockLost({ name: lease.name, token: lease.token, reason: "fenced-out" }))
    ),
    // Whatever failed, a lease found lost since is what the run reports: the failure may be
    // its consequence (a session ended while this process was paused), and a retry must not run.
    Effect.tapError((error) =>
      (error as { readonly _tag?: unknown })._tag === "LockLost"
        ? Effect.void
        : lease.verify.pipe(Effect.catchTag("SqlError", () => Effect.void))
    ),
    Effect.tapError((error) =>
      isTransient(error)
        ? Effect.zipRight(
            Ref.update(progress, (p) => ({ ...p, retries: p.retries + 1 })),
            Effect.logWarning(`sync interrupted by a transient failure, resuming: ${shortReason(error)}`)
          )
        : Effect.void
    ),
    Effect.retry(transientRetrySchedule(defaultRetryPolicy))
  )
