/**
 * tidemark's metrics, in Effect's metric registry: the OTLP exporter sends
 * them (when on) and `/metrics` renders them in Prometheus' text format. The
 * counters and histograms are updated by the work itself (a batch written, a
 * flush, a renewal); the gauges of what the database says (lag, pending
 * items, maintenance debt, queues) are set by `StatusGauges` where a server
 * or a worker runs, since only a long-running process has someone to read them.
 *
 * Names follow Prometheus' conventions (`_total` for counters, seconds for
 * durations); labels are bounded: a source id, a maintenance kind, a queue,
 * a failure class. Histograms carry no source label, to keep their series few.
 */
import { Duration, Effect, Metric, MetricBoundaries } from "effect"

const seconds = MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 18 })

/** A counter that only goes up (OTLP: a monotonic sum). */
const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })

export const itemsSynced = counter("tidemark_items_synced_total", "Items imported (written new or changed)")
export const itemsDeleted = counter(
  "tidemark_items_deleted_total",
  "Items deleted because their source no longer has them"
)
export const bytesSynced = counter("tidemark_bytes_synced_total", "Bytes of content read and written")
export const itemsFailed = counter(
  "tidemark_items_failed_total",
  "Items recorded as item errors (unreadable, rejected)"
)
export const syncs = counter("tidemark_syncs_total", "Syncs ended, by outcome (ok, failed, interrupted)")
export const batchRead = Metric.histogram("tidemark_batch_read_seconds", seconds, "Time to read one batch of items")
export const batchWrite = Metric.histogram(
  "tidemark_batch_write_seconds",
  seconds,
  "Time to write, record and bank one batch (one fenced transaction)"
)
export const flushLatency = Metric.histogram(
  "tidemark_checkpoint_flush_seconds",
  seconds,
  "Time to write one checkpoint flush"
)
export const retries = counter(
  "tidemark_retries_total",
  "Transient failures retried, by failure class (an SQLSTATE class or a system error code)"
)
export const leaseRenewals = counter("tidemark_lease_renewals_total", "Lease renewals that succeeded")
export const leaseLosses = counter("tidemark_lease_losses_total", "Leases lost while held, by reason")
export const maintenanceRuns = counter("tidemark_maintenance_runs_total", "Maintenance paid, by kind and outcome")

export const sourceLag = Metric.gauge("tidemark_source_lag_seconds", {
  description: "Time since the source's last finished sync"
})
export const sourcePending = Metric.gauge("tidemark_source_pending_items", {
  description: "Items planned by the source's open op and not yet banked (0 with no open op)"
})
export const sourceItemErrors = Metric.gauge("tidemark_source_item_errors", {
  description: "Item errors recorded for the source"
})
export const sourceDocuments = Metric.gauge("tidemark_source_documents", {
  description: "Documents stored for the source"
})
export const maintenanceDebt = Metric.gauge("tidemark_maintenance_debt", {
  description: "Maintenance owed (1 per source and kind), with its age in tidemark_maintenance_debt_age_seconds"
})
export const maintenanceDebtAge = Metric.gauge("tidemark_maintenance_debt_age_seconds", {
  description: "How long the maintenance has been owed"
})
export const queueJobs = Metric.gauge("tidemark_queue_jobs", {
  description: "Jobs of a fleet queue, by state (queued, active, failed)"
})
export const workersLive = Metric.gauge("tidemark_workers_live", { description: "Fleet workers holding their lease" })

/** A source's label on a counter. */
export const ofSource = <T extends Metric.Metric<any, any, any>>(metric: T, source: string): T =>
  Metric.tagged(metric, "source", source) as T

/** Runs `self`, recording how long it took (in seconds) in `histogram`, whether it succeeds or not. */
export const timedIn =
  (histogram: Metric.Metric.Histogram<number>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(
      Effect.clockWith((clock) => clock.currentTimeNanos),
      (start) =>
        Effect.ensuring(
          self,
          Effect.flatMap(
            Effect.clockWith((clock) => clock.currentTimeNanos),
            (end) => Metric.update(histogram, Duration.toSeconds(Duration.nanos(end - start)))
          )
        )
    )
