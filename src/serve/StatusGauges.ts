/**
 * The gauges of what the database says, set from one `/api/status` reading:
 * per source its lag (time since its last finished sync), items its open op
 * has still to bank, JSONL entries left for later syncs, item errors and
 * documents; per source and kind the maintenance owed and for how long; per
 * queue its jobs by state; the live workers. A kind that is paid, or a queue
 * that emptied, is set back to 0, so no series keeps a stale value. A
 * long-running process (the server, a worker) refreshes them on a schedule
 * and before each scrape.
 */
import { Effect, Metric, Schedule } from "effect"
import { kinds } from "../maintenance/Debt.js"
import * as Metrics from "../telemetry/Metrics.js"
import type { ApiStatus } from "../status/StatusSchema.js"
import { StatusReader } from "./StatusReader.js"

const backlogGauge = Metric.gauge("tidemark_source_backlog_entries", {
  description: "JSONL entries already in their files and left for later syncs by the flood cap"
})

const at = (iso: string) => Date.parse(iso)

/** Sets every gauge from `status` (read at `status.generatedAt`). */
export const set = (status: ApiStatus) =>
  Effect.gen(function* () {
    const now = at(status.generatedAt)
    for (const source of status.sources) {
      const of = <T extends Metric.Metric.Gauge<number>>(gauge: T) => Metrics.ofSource(gauge, source.id)
      if (source.lastSync !== null)
        yield* Metric.set(of(Metrics.sourceLag), Math.max(0, (now - at(source.lastSync)) / 1000))
      const pending = source.openOp === null ? 0 : Math.max(0, (source.openOp.planned ?? 0) - source.openOp.banked)
      yield* Metric.set(of(Metrics.sourcePending), pending)
      yield* Metric.set(of(Metrics.sourceItemErrors), source.itemErrors)
      if (source.documents !== null) yield* Metric.set(of(Metrics.sourceDocuments), source.documents)
      if (source.jsonl !== null) {
        yield* Metric.set(
          of(backlogGauge),
          source.jsonl.backlog.reduce((n, file) => n + file.entries, 0)
        )
      }
      for (const kind of kinds) {
        const owed = source.maintenance.find((debt) => debt.kind === kind)
        yield* Metric.set(Metric.tagged(of(Metrics.maintenanceDebt), "kind", kind), owed === undefined ? 0 : 1)
        yield* Metric.set(
          Metric.tagged(of(Metrics.maintenanceDebtAge), "kind", kind),
          owed === undefined ? 0 : Math.max(0, (now - at(owed.pendingSince)) / 1000)
        )
      }
    }
    if (status.fleet !== null) {
      yield* Metric.set(Metrics.workersLive, status.fleet.workers.length)
      for (const queue of status.fleet.queues) {
        const of = (state: string) =>
          Metric.tagged(Metric.tagged(Metrics.queueJobs, "queue", queue.queue), "state", state)
        yield* Metric.set(of("queued"), queue.queued)
        yield* Metric.set(of("active"), queue.active)
        yield* Metric.set(of("failed"), queue.failed)
      }
    }
  })

/** Reads the status and sets the gauges from it. */
export const refresh = Effect.flatMap(StatusReader, (reader) => Effect.flatMap(reader.read, set))

/** Keeps the gauges fresh every `every` while the scope is open; a failed reading is logged and tried again. */
export const keepFresh = (every: Parameters<typeof Schedule.spaced>[0]) =>
  refresh.pipe(
    Effect.catchTag("StatusUnavailable", (error) => Effect.logWarning(`metrics: ${error.message}`)),
    Effect.repeat(Schedule.spaced(every)),
    Effect.withTracerEnabled(false),
    Effect.forkScoped
  )
