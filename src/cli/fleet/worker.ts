/**
 * The fleet's commands: `tidemark enqueue NAME` (a sync now), `tidemark worker`
 * (runs jobs until SIGTERM), `tidemark workers` (who runs, what is queued).
 */
import { randomBytes } from "node:crypto"
import * as os from "node:os"
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Layer, Option } from "effect"
import * as Boss from "../../fleet/Boss.js"
import * as FleetStatus from "../../fleet/FleetStatus.js"
import * as PgSourceRegistry from "../../fleet/PgSourceRegistry.js"
import { SourceRegistry } from "../../fleet/SourceRegistry.js"
import * as Worker from "../../fleet/Worker.js"
import * as LeaseLock from "../../lock/LeaseLock.js"
import * as PgLeaseStore from "../../lock/PgLeaseStore.js"
import { payerLayer } from "../commands/maintain.js"
import { formatDuration } from "../../util/humanDuration.js"
import * as Tidemark from "../../Tidemark.js"
import { dbOptions, withDatabase } from "../DbOptions.js"
import * as Flags from "../flags.js"
import { UsageError } from "../UsageError.js"
import { serving } from "../commands/serve.js"
import { serveSettings, workerServeOptions } from "../serveOptions.js"
import * as StatusReader from "../../serve/StatusReader.js"

const jsonFlag = Options.boolean("json").pipe(Options.withDescription("Print the result as JSON."))

const enqueue = Effect.fn("enqueue")(function* (name: string, json: boolean) {
  if (Option.isNone(yield* (yield* SourceRegistry).get(name))) {
    return yield* new UsageError({
      message: `no recorded source named ${JSON.stringify(name)}`,
      hint: "record it with `tidemark source add NAME PATH|URL`; `tidemark source list` shows them"
    })
  }
  const id = yield* Worker.enqueue("sync", name)
  yield* Console.log(
    json
      ? JSON.stringify({ source: name, queued: id !== null, job: id })
      : id === null
        ? `a sync of ${name} is already queued: not queued again`
        : `queued a sync of ${name} (job ${id})`
  )
})

export const enqueueCommand = Command.make(
  "enqueue",
  { ...dbOptions, name: Args.text({ name: "NAME" }).pipe(Args.withDescription("A recorded source.")), json: jsonFlag },
  (flags) =>
    enqueue(flags.name, flags.json).pipe(
      Effect.provide(Layer.merge(PgSourceRegistry.layer, Boss.layer({ role: "client" }))),
      withDatabase(flags)
    )
).pipe(
  Command.withDescription(
    "Queue a sync of a recorded source for the fleet's workers; one already queued is not queued twice."
  )
)

const workQueues = ["sync", "maintain"] as const

export const workerCommand = Command.make(
  "worker",
  {
    ...dbOptions,
    concurrency: Flags.integerIn("concurrency", "Jobs run at once, per queue (default 2).", { min: 1, max: 32 }).pipe(
      Options.withDefault(2)
    ),
    queues: Options.choice("queues", workQueues).pipe(
      Options.withDescription("Which jobs to run (repeatable; default sync and maintain)."),
      Options.repeated
    ),
    ...workerServeOptions
  },
  (flags) =>
    Effect.gen(function* () {
      const id = `${os.hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`
      const queues = flags.queues.length > 0 ? [...new Set(flags.queues)] : [...workQueues]
      const serve = Option.isSome(flags.port)
        ? Option.some(yield* serveSettings({ port: flags.port.value, host: flags.host, token: flags.token }))
        : Option.none()
      const lock = yield* LeaseLock.LeaseLock
      // Held while the worker runs: `tidemark workers` lists the live ones by it.
      yield* lock.withLease(`worker:${id}`, () =>
        Effect.gen(function* () {
          // The status server, if asked for, runs as long as the worker (its scope).
          if (Option.isSome(serve)) yield* Layer.build(serving(serve.value).pipe(Layer.provide(StatusReader.layer)))
          return yield* Worker.run({ id, concurrency: flags.concurrency, queues })
        }).pipe(
          Effect.provide(
            Boss.layer({ role: "worker", poolSize: flags.concurrency * queues.length + 2, instanceName: id })
          )
        )
      )
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(Tidemark.servicesPg, PgSourceRegistry.layer, payerLayer)),
      withDatabase(flags)
    )
).pipe(
  Command.withDescription(
    "Run the fleet's sync and maintenance jobs until SIGTERM (then: stop fetching, stop the jobs in flight with their progress saved, hand them on)."
  )
)

const workers = Effect.fn("workers")(function* (json: boolean) {
  const { workers: live, queues } = yield* FleetStatus.read()
  if (json) return yield* Console.log(JSON.stringify({ workers: live, queues }))
  yield* Console.log(
    live.length === 0 ? "no live workers" : `${live.length} live worker${live.length === 1 ? "" : "s"}:`
  )
  for (const w of live) {
    yield* Console.log(
      `  ${w.id}  pid ${w.pid} on ${w.host}, ${w.jobsInFlight} job${w.jobsInFlight === 1 ? "" : "s"} in flight, heartbeat ${formatDuration(w.sinceHeartbeatMillis)} ago, up ${formatDuration(w.upMillis)}`
    )
  }
  for (const q of queues) {
    yield* Console.log(
      q.queue === Boss.queues.dead
        ? `${q.queue}: ${q.queued} dead-lettered`
        : `${q.queue}: ${q.queued} queued, ${q.active} active, ${q.failed} failed`
    )
  }
})

export const workersCommand = Command.make("workers", { ...dbOptions, json: jsonFlag }, (flags) =>
  workers(flags.json).pipe(
    Effect.provide(
      Layer.merge(Boss.layer({ role: "client" }), LeaseLock.layer.pipe(Layer.provide(PgLeaseStore.layer)))
    ),
    withDatabase(flags)
  )
).pipe(Command.withDescription("The fleet's live workers (host, pid, jobs in flight, heartbeat) and its queues."))
