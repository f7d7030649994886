/**
 * `tidemark worker`: runs the fleet's `sync` and `maintain` jobs from pg-boss,
 * each in a fiber of its own, while holding a `worker:<id>` lease that says it
 * is alive (`tidemark workers`).
 *
 * How a job ends:
 * - it ran: completed, with the sync's summary as its output;
 * - it failed: pg-boss retries it (backoff), then dead-letters it;
 * - pg-boss took it away (its heartbeat lapsed, e.g. this process was frozen):
 *   `job.signal` interrupts its fiber, which flushes and releases; whatever it
 *   still tries to write is refused by the lease's fence;
 * - its expiry comes near, or this worker stops (SIGTERM): the fiber stops
 *   cooperatively (final flush, lease released), a follow-up job is queued and
 *   the job completes, so another worker resumes at once instead of after a
 *   retry delay.
 *
 * Shutdown order is the safety argument, as finalizers run in reverse:
 * (1) stop fetching, (2) interrupt the jobs in flight and wait for their
 * finalizers (flush, release, follow-up), (3) pg-boss stops (the Boss layer,
 * outside this scope), (4) the worker lease is released.
 */
import * as os from "node:os"
import { Cause, Data, Duration, Effect, Exit, Fiber, FiberSet, Runtime } from "effect"
import type { SqlClient } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import type { Job, PgBoss } from "pg-boss"
import { debtRecorded } from "../maintenance/PgDebtStore.js"
import { interruptOn } from "../util/interruptOn.js"
import * as Payer from "../maintenance/Payer.js"
import { attempt, Boss, handOffMarginSeconds, queues, timings, type WorkQueue } from "./Boss.js"
import * as SyncJob from "./SyncJob.js"
import { recordErrorTag } from "../telemetry/Spans.js"

export interface JobData {
  readonly source: string
}

export interface WorkerOptions {
  readonly id: string
  /** Jobs run at once, per queue. */
  readonly concurrency: number
  readonly queues: ReadonlyArray<WorkQueue>
}

type JobError =
  Effect.Effect.Error<ReturnType<typeof SyncJob.run>> | Effect.Effect.Error<ReturnType<typeof Payer.payDue>>
type JobServices =
  Effect.Effect.Context<ReturnType<typeof SyncJob.run>> | Effect.Effect.Context<ReturnType<typeof Payer.payDue>>

/** The job stopped before its end on purpose; a follow-up carries on from its checkpoint. */
class HandOff extends Data.TaggedError("HandOff")<{ readonly reason: string }> {}

/** Queues a job for `source` unless one is queued already (the queue keeps one queued per source): its id, or null. */
export const enqueue = Effect.fn("Worker.enqueue")(function* (queue: WorkQueue, source: string) {
  const boss = yield* Boss
  return yield* attempt(`queueing a ${queue} of ${source}`, () =>
    boss.send(queues[queue], { source } satisfies JobData, { singletonKey: source })
  )
})

const describe = (result: unknown): string => {
  const r = result as { synced?: { imported: number; deleted: number; failed: number }; skipped?: string }
  if (r.synced !== undefined)
    return `imported ${r.synced.imported}, deleted ${r.synced.deleted}, failed ${r.synced.failed}`
  return r.skipped ?? "done"
}

const failureText = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") {
    const error = failure.value as { readonly _tag?: string; readonly message?: string }
    return `${error._tag ?? "Error"}: ${error.message ?? String(error)}`
  }
  return Cause.pretty(cause).split("\n")[0] ?? "failed"
}

/**
 * The sync's maintenance debt goes to the maintain queue, for whichever worker takes it:
 * queued in the transaction that records the debt (pg-boss's SQL on that transaction's
 * connection), so the two commit or fail together. Once one is queued, the queue refuses
 * more for the source until it runs (a statement per batch, nothing more).
 */
export const maintainInTransaction = (boss: PgBoss) => (sql: SqlClient, source: string) =>
  Effect.flatMap(Effect.runtime<never>(), (inTransaction) =>
    Effect.tryPromise({
      try: () =>
        boss.send(queues.maintain, { source } satisfies JobData, {
          singletonKey: source,
          db: {
            executeSql: (text: string, values?: Array<unknown>) =>
              Runtime.runPromise(inTransaction)(sql.unsafe(text, values ?? [])).then(
                (rows): { rows: Array<unknown> } => ({ rows: [...rows] })
              )
          }
        }),
      catch: (cause) => new SqlError({ cause, message: `queueing the maintenance of ${source}` })
    })
  ).pipe(Effect.asVoid)

export const run = (options: WorkerOptions) =>
  Effect.gen(function* () {
    const boss = yield* Boss
    const runtime = yield* Effect.runtime<JobServices>()
    // (1) is added last, so it runs first: the jobs' set closes after fetching has stopped.
    const inFlight = yield* FiberSet.make<unknown, unknown>()

    const work = (queue: WorkQueue, source: string): Effect.Effect<object, JobError, JobServices> =>
      queue === "sync"
        ? Effect.locally(SyncJob.run(source), debtRecorded, maintainInTransaction(boss))
        : Effect.map(Payer.payDue(source), (reports) => ({ source, paid: reports }))

    /** Stops cooperatively, queues the follow-up, and completes: what a job does before its expiry or on SIGTERM. */
    const handOff = (queue: WorkQueue, job: Job<JobData>, reason: string) =>
      Effect.gen(function* () {
        const followUp = yield* Effect.either(
          attempt("queueing the follow-up", () =>
            boss.send(queues[queue], { source: job.data.source } satisfies JobData, { singletonKey: job.data.source })
          )
        )
        yield* Effect.logInfo(
          `${queue} of ${job.data.source} stopped (${reason}): progress saved, ${
            followUp._tag === "Right"
              ? "a follow-up queued"
              : `no follow-up queued (${followUp.left.message}); pg-boss retries it`
          }`
        )
        return { source: job.data.source, handedOff: reason }
      })

    const handled = (queue: WorkQueue, job: Job<JobData>) => {
      const bound = Duration.seconds(Math.max(job.expireInSeconds - handOffMarginSeconds, 1))
      return interruptOn(
        work(queue, job.data.source),
        Effect.sleep(bound).pipe(
          Effect.zipRight(
            Effect.logInfo(
              `${queue} of ${job.data.source}: its job expiry is near: stopping after the batches in flight`
            )
          ),
          Effect.zipRight(Effect.fail(new HandOff({ reason: "its job expiry is near" })))
        )
      ).pipe(
        Effect.catchTag("HandOff", (stop) => handOff(queue, job, stop.reason)),
        Effect.tap((result) => Effect.logInfo(`${queue} of ${job.data.source}: ${describe(result)} (job ${job.id})`)),
        Effect.annotateLogs({ job: job.id }),
        recordErrorTag,
        Effect.withSpan(`tidemark.job.${queue}`, {
          attributes: { "tidemark.source": job.data.source, "tidemark.job": job.id, "tidemark.queue": queue }
        })
      )
    }

    // pg-boss calls a Promise-returning handler: this is the one place the jobs' Effects are run.
    const handler = (queue: WorkQueue) => async (batch: Array<Job<JobData>>) => {
      const job = batch[0]!
      const fiber = Runtime.runSync(runtime)(FiberSet.run(inFlight, handled(queue, job)))
      // pg-boss gave the job to another worker (this one's heartbeat lapsed): stop at once.
      const abort = () => Runtime.runFork(runtime)(Fiber.interrupt(fiber))
      job.signal.addEventListener("abort", abort, { once: true })
      const exit = await Runtime.runPromise(runtime)(Fiber.await(fiber))
      job.signal.removeEventListener("abort", abort)
      if (Exit.isSuccess(exit)) return exit.value
      if (Exit.isInterrupted(exit) && !job.signal.aborted) {
        // This worker is stopping: the follow-up carries on elsewhere.
        return Runtime.runPromise(runtime)(handOff(queue, job, "the worker is stopping"))
      }
      if (job.signal.aborted) return { source: job.data.source, takenOver: true }
      const reason = failureText(exit.cause)
      Runtime.runFork(runtime)(Effect.logWarning(`${queue} of ${job.data.source} failed: ${reason} (job ${job.id})`))
      throw new Error(reason)
    }

    for (const queue of options.queues) {
      const workId = yield* attempt(`working on ${queues[queue]}`, () =>
        boss.work<JobData>(
          queues[queue],
          {
            localConcurrency: options.concurrency,
            batchSize: 1,
            pollingIntervalSeconds: timings.pollingIntervalSeconds,
            // Refreshed at 2.5 s: three refreshes may fail before the 10 s heartbeat lapses.
            heartbeatRefreshSeconds: timings.heartbeatSeconds / 4
          },
          handler(queue)
        )
      )
      yield* Effect.addFinalizer(() =>
        attempt(`stopping work on ${queues[queue]}`, () =>
          boss.offWork(queues[queue], { id: workId, wait: false })
        ).pipe(Effect.catchTag("JobEngineError", (error) => Effect.logWarning(error.message)))
      )
    }
    yield* Effect.logInfo(
      `worker ${options.id} on ${os.hostname()} (pid ${process.pid}): ${options.queues.join(", ")}, ${options.concurrency} at once`
    )
    return yield* Effect.never
  }).pipe(
    // Its own scope, inside pg-boss's: the jobs are stopped and handed on before pg-boss stops.
    Effect.scoped
  )
