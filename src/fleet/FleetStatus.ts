/**
 * The fleet at a glance: live workers (by their `worker:<id>` leases, with
 * pg-boss's instance registry for their jobs in flight) and each queue's
 * counts. Read by `tidemark workers` and by the status server.
 */
import { Effect } from "effect"
import { LeaseLock } from "../lock/LeaseLock.js"
import type { FleetStatus } from "../status/StatusSchema.js"
import * as Boss from "./Boss.js"

export const read = Effect.fn("FleetStatus.read")(function* () {
  const boss = yield* Boss.Boss
  const leases = (yield* (yield* LeaseLock).list).filter((lease) => lease.name.startsWith("worker:"))
  const instances = yield* Boss.attempt("reading the instances", () => boss.getInstances())
  const queueStats = yield* Boss.attempt("reading the queues", () =>
    boss.getQueues([Boss.queues.sync, Boss.queues.maintain, Boss.queues.dead])
  )
  const workers = leases
    .filter((lease) => lease.expiresInMillis > 0)
    .map((lease) => {
      const id = lease.name.slice("worker:".length)
      const instance = instances.find((i) => i.name === id)
      return {
        id,
        host: lease.host,
        pid: lease.pid,
        jobsInFlight: instance?.workers.reduce((n, w) => n + w.active, 0) ?? 0,
        sinceHeartbeatMillis: lease.sinceHeartbeatMillis,
        upMillis: lease.ageMillis
      }
    })
  const queues = queueStats.map((q) => ({
    queue: q.name,
    queued: q.queuedCount,
    active: q.activeCount,
    failed: q.failedCount,
    total: q.totalCount
  }))
  return { workers, queues } satisfies FleetStatus
})
