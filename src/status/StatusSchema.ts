/**
 * What tidemark says about its sources and its fleet, as Schemas: the shape of
 * `tidemark status --json` (one `SourceStatus` per source), of `tidemark
 * workers --json`, and of the server's `/api/status`, which is both together.
 * The queries build these types, the server encodes with them, and a client
 * (the status page, a test, a user's script) can decode with them.
 */
import { Schema } from "effect"

const Count = Schema.Number

export const SourceStatus = Schema.Struct({
  id: Schema.String,
  kind: Schema.String,
  root: Schema.String,
  watermark: Schema.Unknown,
  /** The sink its items go to ("documents", or one of an embedding program). */
  sink: Schema.String,
  /** Documents stored, for a source of the documents sink (exact: kept by the writes); null for any other sink. */
  documents: Schema.NullOr(Count),
  lastSync: Schema.NullOr(Schema.String),
  openOp: Schema.NullOr(
    Schema.Struct({
      id: Count,
      banked: Count,
      planned: Schema.NullOr(Count),
      restarts: Count,
      startedAt: Schema.String,
      /** Where the op started from and where it goes (git: commits). */
      base: Schema.Unknown,
      target: Schema.Unknown
    })
  ),
  /** The last saved progress of the current or last sync (cumulative across restarts), if any was saved. */
  run: Schema.NullOr(
    Schema.Struct({
      opId: Schema.NullOr(Count),
      phase: Schema.NullOr(Schema.String),
      planned: Schema.NullOr(Count),
      done: Schema.NullOr(Count),
      failed: Schema.NullOr(Count),
      bytes: Schema.NullOr(Count),
      restarts: Schema.NullOr(Count),
      itemsPerSecond: Schema.NullOr(Schema.Number),
      etaSeconds: Schema.NullOr(Schema.Number),
      savedAgeSeconds: Schema.Number
    })
  ),
  /** Git: whether the work tree has uncommitted changes (they are not synced); null otherwise. */
  uncommitted: Schema.NullOr(Schema.Boolean),
  /** JSONL: its files and entries; null for other kinds. */
  jsonl: Schema.NullOr(
    Schema.Struct({
      files: Count,
      gone: Count,
      /** Entries present in their files (exact: kept per source). */
      entries: Count,
      /** Files with new entries left for later syncs by the flood cap, and how many. */
      backlog: Schema.Array(Schema.Struct({ path: Schema.String, entries: Count })),
      /** Files whose last line is still being written. */
      pendingTails: Schema.Array(Schema.String)
    })
  ),
  /** Maintenance owed: per kind, since when, failed attempts, who is paying it. */
  maintenance: Schema.Array(
    Schema.Struct({
      kind: Schema.String,
      pendingSince: Schema.String,
      attempts: Count,
      lastError: Schema.NullOr(Schema.String),
      nextAttemptInSeconds: Schema.Number,
      payer: Schema.NullOr(Schema.String)
    })
  ),
  itemErrors: Count,
  recentErrors: Schema.Array(Schema.Struct({ key: Schema.String, error: Schema.String, attempts: Count })),
  lock: Schema.NullOr(Schema.Struct({ pid: Count, host: Schema.String, heartbeatAgeSeconds: Schema.Number }))
})
export type SourceStatus = typeof SourceStatus.Type

export const WorkerStatus = Schema.Struct({
  id: Schema.String,
  host: Schema.String,
  pid: Count,
  jobsInFlight: Count,
  sinceHeartbeatMillis: Schema.Number,
  upMillis: Schema.Number
})
export type WorkerStatus = typeof WorkerStatus.Type

export const QueueStatus = Schema.Struct({
  queue: Schema.String,
  queued: Count,
  active: Count,
  failed: Count,
  total: Count
})
export type QueueStatus = typeof QueueStatus.Type

export const FleetStatus = Schema.Struct({ workers: Schema.Array(WorkerStatus), queues: Schema.Array(QueueStatus) })
export type FleetStatus = typeof FleetStatus.Type

/** `/api/status`: every source, and the fleet (null where no fleet was ever set up in this database). */
export const ApiStatus = Schema.Struct({
  generatedAt: Schema.String,
  version: Schema.String,
  sources: Schema.Array(SourceStatus),
  fleet: Schema.NullOr(FleetStatus)
})
export type ApiStatus = typeof ApiStatus.Type
