/**
 * The lease's numbers and the small pure decisions made from them.
 *
 * Safety rests on one inequality: a holder gives up at `deadline` after its
 * last successful renewal, and the store grants the lease to someone else no
 * earlier than `ttl` after that renewal; `deadline < ttl` leaves the margin
 * for the work to be interrupted. Fencing covers a holder that was paused
 * through the whole margin.
 */
import { Duration, Either } from "effect"
import { formatDuration } from "../util/humanDuration.js"
import { InvalidLeaseTimings } from "./errors.js"

export interface LeaseTimings {
  /** How long a grant or renewal keeps the lease, by the store's clock. */
  readonly ttl: Duration.Duration
  /** Time between renewals. */
  readonly renewEvery: Duration.Duration
  /** With no successful renewal for this long, the holder considers the lease lost. */
  readonly deadline: Duration.Duration
}

export const defaultTimings: LeaseTimings = {
  ttl: Duration.seconds(30),
  renewEvery: Duration.seconds(10),
  deadline: Duration.seconds(20)
}

/** Timings derived from a ttl the usual way: renew every ttl/3, deadline 2/3·ttl. */
export const fromTtl = (ttl: Duration.DurationInput): Either.Either<LeaseTimings, InvalidLeaseTimings> => {
  const millis = Duration.toMillis(ttl)
  return make({ ttl, renewEvery: Duration.millis(millis / 3), deadline: Duration.millis((millis * 2) / 3) })
}

export const make = (input: {
  readonly ttl: Duration.DurationInput
  readonly renewEvery: Duration.DurationInput
  readonly deadline: Duration.DurationInput
}): Either.Either<LeaseTimings, InvalidLeaseTimings> => {
  const ttl = Duration.decode(input.ttl)
  const renewEvery = Duration.decode(input.renewEvery)
  const deadline = Duration.decode(input.deadline)
  const invalid = (reason: string) => Either.left(new InvalidLeaseTimings({ reason }))
  if (!Duration.isFinite(ttl) || Duration.toMillis(ttl) < 1) return invalid("ttl must be a positive, finite duration")
  if (Duration.toMillis(renewEvery) < 1) return invalid("renewals must be at least a millisecond apart")
  if (!Duration.lessThan(renewEvery, deadline)) {
    return invalid(
      `renew interval (${formatDuration(renewEvery)}) must be shorter than the deadline (${formatDuration(deadline)})`
    )
  }
  if (!Duration.lessThan(deadline, ttl)) {
    return invalid(
      `deadline (${formatDuration(deadline)}) must be shorter than the ttl (${formatDuration(ttl)}), or a lost lease could be granted to another holder before this one stops`
    )
  }
  return Either.right({ ttl, renewEvery, deadline })
}

/** May a lease that expires at `expiresAt` be granted to someone else at `now`? (Store clock, millis.) */
export const mayTakeOver = (expiresAt: number, now: number): boolean => expiresAt < now

/** Has the holder gone too long without a successful renewal? (Holder clock, millis.) */
export const deadlinePassed = (lastRenewedAt: number, now: number, timings: LeaseTimings): boolean =>
  now - lastRenewedAt >= Duration.toMillis(timings.deadline)

/** How long a renewal attempt may take before the deadline passes. */
export const timeLeft = (lastRenewedAt: number, now: number, timings: LeaseTimings): Duration.Duration =>
  Duration.millis(Math.max(0, lastRenewedAt + Duration.toMillis(timings.deadline) - now))
