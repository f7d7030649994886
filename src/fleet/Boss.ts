/**
 * The fleet's job engine: pg-boss 12, in a PostgreSQL schema of its own
 * (`tidemark_boss`), reached through the main URL (`DATABASE_URL`, which may be
 * a PgBouncer in transaction mode: pg-boss polls and never LISTENs here).
 * pg-boss distributes the jobs; what makes a job that runs twice harmless is
 * tidemark's own lease and fence inside it.
 *
 * pg-boss's defaults are made for short jobs and are wrong for syncs, so every
 * timing below is set on purpose (each says why). Queues are created once,
 * with these settings; pg-boss does not let a queue's policy or heartbeat
 * change later.
 */
import { Context, Data, Effect, Layer, Redacted, Runtime } from "effect"
import type { PgBoss } from "pg-boss"
import { ConnectionTarget } from "../db/Database.js"
import { shortReason } from "../db/Transient.js"

/** pg-boss's tables live here, apart from tidemark's. */
export const bossSchema = "tidemark_boss"

export const queues = {
  sync: "tidemark-sync",
  maintain: "tidemark-maintain",
  /** Where a job goes after its last retry failed: kept for a person to look at (`tidemark workers`). */
  dead: "tidemark-dead"
} as const
export type WorkQueue = "sync" | "maintain"

export const timings = {
  /** The smallest pg-boss accepts: a SIGKILLed worker's job runs again ~10 s later, not after its expiry. */
  heartbeatSeconds: 10,
  /** How often each worker checks heartbeats and expiries (default 60 s: a dead worker's job would wait that long). */
  superviseIntervalSeconds: 2,
  monitorIntervalSeconds: 2,
  /** A job's limit (default 15 min). A longer sync checkpoints and queues its own follow-up before it. */
  expireInSeconds: 60 * 60,
  /** Retries of a failed job (default 2: a source whose mount is back after 10 minutes deserves more). */
  retryLimit: 8,
  retryDelay: 2,
  retryBackoff: true,
  retryDelayMax: 300,
  /** Finished jobs are kept a week (pg-boss's default), for `tidemark workers` and a person. */
  deleteAfterSeconds: 7 * 24 * 60 * 60,
  /** The smallest poll (default 2 s): without LISTEN/NOTIFY (PgBouncer), polling is how a worker hears of a job. */
  pollingIntervalSeconds: 0.5
} as const

/** How long before its expiry a job stops, saves its progress and queues its follow-up. */
export const handOffMarginSeconds = 120

/** pg-boss failed (it could not reach its tables, a statement failed): the operation and pg-boss's reason. */
export class JobEngineError extends Data.TaggedError("JobEngineError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message() {
    return `job engine (pg-boss): ${this.operation} failed: ${shortReason(this.cause)}`
  }
}

export const attempt = <A>(operation: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => new JobEngineError({ operation, cause }) })

export class Boss extends Context.Tag("tidemark/Boss")<Boss, PgBoss>() {}

export interface BossOptions {
  /** A worker supervises heartbeats and fires schedules; a client (`enqueue`, `source add`) only sends. */
  readonly role: "client" | "worker"
  /** pg-boss's own pool (default 4). */
  readonly poolSize?: number
  /** Its name in pg-boss's instance registry. */
  readonly instanceName?: string
}

const createQueues = (boss: PgBoss) =>
  Effect.gen(function* () {
    // The dead-letter queue first: the others name it.
    const wanted = [
      { name: queues.dead, options: { policy: "standard" as const } },
      ...[queues.sync, queues.maintain].map((name) => ({
        name,
        options: {
          // One queued and one running job per source (singletonKey): a follow-up waits for the running one.
          policy: "stately" as const,
          heartbeatSeconds: timings.heartbeatSeconds,
          expireInSeconds: timings.expireInSeconds,
          retryLimit: timings.retryLimit,
          retryDelay: timings.retryDelay,
          retryBackoff: timings.retryBackoff,
          retryDelayMax: timings.retryDelayMax,
          deleteAfterSeconds: timings.deleteAfterSeconds,
          deadLetter: queues.dead
        }
      }))
    ]
    for (const { name, options } of wanted) {
      const existing = yield* attempt(`reading queue ${name}`, () => boss.getQueue(name))
      if (existing === null) yield* attempt(`creating queue ${name}`, () => boss.createQueue(name, options))
    }
  })

/**
 * A started pg-boss (its schema installed or migrated if needed, its queues
 * created), stopped when the scope closes: gracefully, after the jobs it runs
 * have returned (the worker interrupts them first).
 */
export const layer = (options: BossOptions): Layer.Layer<Boss, JobEngineError, ConnectionTarget> =>
  Layer.scoped(
    Boss,
    Effect.gen(function* () {
      const target = yield* ConnectionTarget
      const runtime = yield* Effect.runtime<never>()
      const worker = options.role === "worker"
      // Loaded only here: a third of the CLI's bundle that no command outside the fleet runs.
      const { PgBoss } = yield* Effect.promise(() => import("pg-boss"))
      const boss = new PgBoss({
        connectionString: Redacted.value(target.mainUrl),
        schema: bossSchema,
        application_name: "tidemark:boss",
        max: options.poolSize ?? 4,
        migrate: true,
        supervise: worker,
        schedule: worker,
        superviseIntervalSeconds: timings.superviseIntervalSeconds,
        monitorIntervalSeconds: timings.monitorIntervalSeconds,
        registerInstance: worker,
        ...(options.instanceName === undefined ? {} : { instanceName: options.instanceName })
      })
      // An EventEmitter's unheard "error" would throw: pg-boss reports its background failures here.
      boss.on("error", (error) =>
        Runtime.runFork(runtime)(Effect.logWarning(`job engine: ${shortReason(error)} (pg-boss goes on)`))
      )
      yield* Effect.acquireRelease(
        attempt("starting", () => boss.start()),
        () =>
          attempt("stopping", () => boss.stop({ graceful: true, close: true, timeout: 30_000 })).pipe(
            Effect.catchTag("JobEngineError", (error) => Effect.logWarning(error.message))
          )
      )
      yield* createQueues(boss)
      return boss
    })
  )
