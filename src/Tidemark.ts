/**
 * The services a sync runs on, assembled per deployment: on PostgreSQL (the
 * CLI's, and an embedding program's), or in memory (simulations under
 * `TestClock`, tests of one's own rules). `SyncProgram.run` needs exactly
 * `SyncServices`; the memory version holds the same behaviour (one behaviour
 * suite runs on both).
 *
 *   layerPg      the database from `DbSettings` (embedded or `DATABASE_URL`),
 *                migrated, tidemark's backfills run, and every sync service
 *                with the documents sink
 *   layerMemory  the same services in memory, timed by `Clock`
 */
import { Layer } from "effect"
import * as Backfills from "./db/Backfills.js"
import * as Database from "./db/Database.js"
import * as Readiness from "./db/Readiness.js"
import { ownBackfills } from "./db/ownBackfills.js"
import * as StderrLogger from "./log/StderrLogger.js"
import type { CheckpointStore } from "./checkpoint/CheckpointStore.js"
import * as MemoryCheckpointStore from "./checkpoint/MemoryCheckpointStore.js"
import * as PgCheckpointStore from "./checkpoint/PgCheckpointStore.js"
import type { DirectDb, MainDb } from "./db/Database.js"
import * as LeaseLock from "./lock/LeaseLock.js"
import type { LeaseStore } from "./lock/LeaseStore.js"
import * as MemoryLeaseStore from "./lock/MemoryLeaseStore.js"
import * as PgLeaseStore from "./lock/PgLeaseStore.js"
import * as MemoryOpsStore from "./ops/MemoryOpsStore.js"
import type { OpsStore } from "./ops/OpsStore.js"
import * as PgOpsStore from "./ops/PgOpsStore.js"
import type { ItemErrorStore } from "./quarantine/ItemErrorStore.js"
import * as MemoryItemErrorStore from "./quarantine/MemoryItemErrorStore.js"
import * as PgItemErrorStore from "./quarantine/PgItemErrorStore.js"
import type { EntriesStore } from "./entries/EntriesStore.js"
import * as MemoryEntriesStore from "./entries/MemoryEntriesStore.js"
import * as PgEntriesStore from "./entries/PgEntriesStore.js"
import type { DebtStore } from "./maintenance/DebtStore.js"
import * as MemoryDebtStore from "./maintenance/MemoryDebtStore.js"
import * as PgDebtStore from "./maintenance/PgDebtStore.js"
import * as DocumentsSink from "./sink/DocumentsSink.js"
import * as MemorySink from "./sink/MemorySink.js"
import type { Sink } from "./sink/Sink.js"
import * as MemoryRunStateStore from "./state/MemoryRunStateStore.js"
import * as PgRunStateStore from "./state/PgRunStateStore.js"
import type { RunStateStore } from "./state/RunStateStore.js"

/** What a sync needs besides its source: everything but the sink. */
export type Stores =
  | LeaseLock.LeaseLock
  | LeaseStore
  | CheckpointStore
  | RunStateStore
  | OpsStore
  | ItemErrorStore
  | EntriesStore
  | DebtStore

export type SyncServices = Stores | Sink

/** The stores on PostgreSQL (leases, checkpoints and run state through the direct pool). */
export const storesPg: Layer.Layer<Stores, never, MainDb | DirectDb> = Layer.mergeAll(
  LeaseLock.layer,
  PgCheckpointStore.layer,
  PgRunStateStore.layer,
  PgOpsStore.layer,
  PgItemErrorStore.layer,
  PgEntriesStore.layer,
  PgDebtStore.layer
).pipe(Layer.provideMerge(PgLeaseStore.layer))

/** The stores and the documents sink on PostgreSQL. */
export const servicesPg: Layer.Layer<SyncServices, never, MainDb | DirectDb> = Layer.merge(
  storesPg,
  DocumentsSink.layer
)

export { ownBackfills }

export interface PgOptions {
  /** A sink of your own instead of the documents sink (it may write through `Database.MainDb`). */
  readonly sink?: Layer.Layer<Sink, never, MainDb | DirectDb>
  /** Backfills of your own, run after tidemark's, once per version (see `Backfills`). */
  readonly backfills?: ReadonlyArray<Backfills.BackfillStep>
}

/**
 * Everything a sync needs on PostgreSQL, from `DbSettings` alone: the server
 * (the embedded one unless `DATABASE_URL` names one), both pools, the schema
 * brought up to date, tidemark's backfills (and `options.backfills`) run, and
 * the sync services over the documents sink (or `options.sink`).
 */
export const layerPgWith = (options: PgOptions = {}) => {
  const registry = (options.backfills ?? []).reduce(
    (layer, step) => Layer.provideMerge(Backfills.register(step), layer),
    ownBackfills
  )
  const migrated = Layer.effectDiscard(Readiness.ensureReady())
  const services = Layer.merge(storesPg, options.sink ?? DocumentsSink.layer)
  return Layer.merge(services, migrated).pipe(Layer.provideMerge(Layer.merge(Database.layer, registry)))
}

/** `layerPgWith()`: the documents sink and tidemark's own backfills. Needs `DbSettings` (e.g. `DbSettings.layerFromEnv`). */
export const layerPg = layerPgWith()

/** The library's log lines on stderr, prefixed `tidemark:`, secrets scrubbed (Effect's default logger writes to stdout). */
export const stderrLogger = StderrLogger.layer()

/** The stores in memory, timed by `Clock` (so `TestClock` drives them). */
export const storesMemory: Layer.Layer<
  Stores | MemoryOpsStore.MemoryOps | MemoryCheckpointStore.MemoryCheckpoints | MemoryEntriesStore.MemoryEntries
> = Layer.mergeAll(
  LeaseLock.layer,
  MemoryRunStateStore.layer,
  MemoryItemErrorStore.layer,
  MemoryOpsStore.layer,
  MemoryEntriesStore.layer
).pipe(Layer.provideMerge(Layer.mergeAll(MemoryLeaseStore.layer, MemoryCheckpointStore.layer, MemoryDebtStore.layer)))

/** The stores and a sink in memory (its options: what it rejects). */
export const layerMemoryWith = (
  sink: MemorySink.MemorySinkOptions = {}
): Layer.Layer<
  SyncServices | MemorySink.MemorySink | MemoryOpsStore.MemoryOps | MemoryCheckpointStore.MemoryCheckpoints
> => Layer.provideMerge(MemorySink.layer(sink), storesMemory)

/** Every sync service in memory, with a sink that stores everything. */
export const layerMemory = layerMemoryWith()

/** What `layerPg` provides besides the sync services. */
export type PgProvides = SyncServices | MainDb | DirectDb | Database.ConnectionTarget | Backfills.Backfills
