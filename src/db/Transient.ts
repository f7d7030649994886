/**
 * Which database failures are worth retrying, and the one retry schedule that
 * every caller reuses. A failure is transient when the same statement can
 * succeed later without anyone changing anything: the server restarting, the
 * connection dropping, the pool or the server running out of slots, a
 * serialization conflict. Everything else (a constraint, a syntax error, a
 * statement timeout) is permanent and must surface at once.
 */
import { Cause, Duration, Effect, Metric, Option, Schedule } from "effect"
import * as Metrics from "../telemetry/Metrics.js"
import { formatDuration } from "../util/humanDuration.js"

export type FailureClass = "transient" | "permanent"

/** SQLSTATEs that a retry can get past. Class 08 (connection exception) is matched by prefix. */
const transientSqlStates: ReadonlySet<string> = new Set([
  "53300", // too_many_connections
  "53400", // configuration_limit_exceeded
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up, shutting down, recovering)
  "40001", // serialization_failure
  "40P01" // deadlock_detected
])

const transientErrnos: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN"
])

/**
 * Messages of the node-postgres client, its pool and poolers that carry no code.
 * Lower-case substrings.
 */
const transientMessages: ReadonlyArray<string> = [
  "connection terminated", // pg: server went away mid-query, or connect timeout
  "client has encountered a connection error",
  "timeout exceeded when trying to connect", // pg-pool: acquire timeout
  "connection timed out", // @effect/sql-pg: initial connect timeout
  "server closed the connection unexpectedly",
  "too many clients",
  "max clients", // PgBouncer session mode: "max clients in session mode"
  "no more connections allowed", // PgBouncer: max_client_conn
  "remaining connection slots are reserved",
  "the database system is starting up",
  "the database system is shutting down",
  "the database system is in recovery mode"
]

interface ErrorLike {
  readonly _tag?: unknown
  readonly code?: unknown
  readonly syscall?: unknown
  readonly message?: unknown
  readonly cause?: unknown
}

const isObject = (u: unknown): u is ErrorLike => typeof u === "object" && u !== null

const classifyOne = (error: ErrorLike): FailureClass | undefined => {
  const code = typeof error.code === "string" ? error.code : undefined
  if (code !== undefined) {
    if (transientSqlStates.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return "transient"
    if (transientErrnos.has(code)) return "transient"
    // A Unix socket that is missing while the server restarts.
    if (code === "ENOENT" && error.syscall === "connect") return "transient"
    // Any other SQLSTATE is the server's considered answer: permanent.
    if (/^[0-9A-Z]{5}$/.test(code)) return "permanent"
  }
  // A tagged error of our own is judged by its type and its cause, never by words
  // its message may quote (CheckpointUnavailable quotes the failure that caused it).
  const isDomainError = typeof error._tag === "string" && error._tag !== "SqlError"
  const message = typeof error.message === "string" && !isDomainError ? error.message.toLowerCase() : ""
  if (transientMessages.some((m) => message.includes(m))) return "transient"
  return undefined
}

/**
 * Classifies any failure: an `SqlError` (its `cause` is the driver's error), a
 * driver error, a Node system error, or an Effect `Cause` (a failure at COMMIT
 * arrives as a defect). The first link of the cause chain that is decisive wins.
 */
export const classify = (failure: unknown): FailureClass => {
  if (Cause.isCause(failure)) {
    const first = Option.orElse(Cause.failureOption(failure), () => Cause.dieOption(failure))
    return Option.isSome(first) ? classify(first.value) : "permanent"
  }
  const seen = new Set<unknown>()
  let current: unknown = failure
  while (isObject(current) && !seen.has(current)) {
    seen.add(current)
    const verdict = classifyOne(current)
    if (verdict !== undefined) return verdict
    if (current instanceof AggregateError) {
      if (current.errors.some((inner) => classify(inner) === "transient")) return "transient"
    }
    current = current.cause
  }
  return "permanent"
}

export const isTransient = (failure: unknown): boolean => classify(failure) === "transient"

/**
 * A retried failure's class, for the retries metric: the SQLSTATE class of the first
 * code in its cause chain ("sqlstate-08", a connection exception), a system error's code
 * ("ECONNREFUSED"), else "other". Bounded: never a message.
 */
export const failureClassOf = (failure: unknown): string => {
  const seen = new Set<unknown>()
  let current: unknown = Cause.isCause(failure) ? Cause.squash(failure) : failure
  while (isObject(current) && !seen.has(current)) {
    seen.add(current)
    const code = typeof current.code === "string" ? current.code : undefined
    if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) return `sqlstate-${code.slice(0, 2)}`
    if (code !== undefined && /^E[A-Z]+$/.test(code)) return code
    current = current.cause
  }
  return "other"
}

/** What failed, in a few words for a retry line: the driver's code and message, never a URL. */
export const shortReason = (failure: unknown): string => {
  const seen = new Set<unknown>()
  let current: unknown = Cause.isCause(failure) ? Cause.squash(failure) : failure
  while (isObject(current) && !seen.has(current)) {
    seen.add(current)
    const isDriverError = typeof current._tag !== "string"
    if (isDriverError && typeof current.message === "string" && current.message !== "") {
      const code = typeof current.code === "string" ? current.code : undefined
      return code === undefined || current.message.includes(code) ? current.message : `${current.message} [${code}]`
    }
    current = current.cause
  }
  return isObject(failure) && typeof failure.message === "string" ? failure.message : String(failure)
}

export interface RetryPolicy {
  /** Delay before the first retry; each further retry doubles it, with jitter. */
  readonly base: Duration.DurationInput
  /** Upper bound of a single delay. */
  readonly cap: Duration.DurationInput
  /** Retries after the first attempt, at most. */
  readonly retries: number
  /** No retry starts once this long has passed since the first failure. */
  readonly within?: Duration.DurationInput
}

/**
 * Inside a run: an outage of up to ~30 s is ridden out (a server restart, a
 * pooler failing over). Under a lease, the lease's renew deadline (20 s by
 * default) usually ends it first: the work stops with the lease lost.
 */
export const defaultRetryPolicy: RetryPolicy = {
  base: "200 millis",
  cap: "5 seconds",
  retries: 12,
  within: "30 seconds"
}

/** The first connection of a process: a server that never answered is reported within ~10 s. */
export const connectRetryPolicy: RetryPolicy = {
  base: "200 millis",
  cap: "2 seconds",
  retries: 12,
  within: "8 seconds"
}

/** An outage this long is worth a line on stderr at every further retry; shorter ones only in --verbose. */
const quietFor = Duration.seconds(2)

/**
 * Exponential backoff with jitter, each delay capped, bounded in count and in
 * time since the first failure, continuing only while the failure is
 * transient. Each retry is logged, naming `where` (a host and port, or a
 * socket: never a password): at debug level during the first seconds of an
 * outage, then as a warning, so that an outage shows while it lasts.
 */
export const transientRetrySchedule = (policy: RetryPolicy = defaultRetryPolicy, where = "the database") => {
  const cap = Duration.decode(policy.cap)
  const bounded = Schedule.exponential(policy.base, 2).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((delay) => Duration.min(delay, cap)),
    Schedule.intersect(Schedule.recurs(policy.retries)),
    Schedule.intersect(Schedule.elapsed)
  )
  return (policy.within === undefined ? bounded : Schedule.upTo(bounded, policy.within)).pipe(
    Schedule.whileInput((failure: unknown) => isTransient(failure)),
    Schedule.intersect(Schedule.identity<unknown>()),
    Schedule.modifyDelayEffect(([[[, retries], elapsed], failure], delay) => {
      const line = `database unavailable at ${where}: ${shortReason(failure)}; retrying in ${formatDuration(delay)} (attempt ${retries + 2})`
      return Effect.as(
        Effect.zipRight(
          Metric.increment(Metric.tagged(Metrics.retries, "class", failureClassOf(failure))),
          Duration.lessThan(elapsed, quietFor) ? Effect.logDebug(line) : Effect.logWarning(line)
        ),
        delay
      )
    })
  )
}

/** Retries `self` on transient failures with the shared schedule. */
export const retryTransient =
  (policy: RetryPolicy = defaultRetryPolicy, where?: string) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.retry(self, transientRetrySchedule(policy, where))
