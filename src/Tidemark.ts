/**
 * The services a sync runs on, assembled per deployment: on PostgreSQL (the
 * CLI's, and an embedding program's), or in memory (simulations under
 * `TestClock`, tests of one's own rules). `SyncProgram.run` needs exactly
 * `SyncServices`; the memory version holds the same behaviour (one behaviour
 * suite runs on both).
 */
import { Layer } from "effect"
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
import * as DocumentsSink from "./sink/DocumentsSink.js"
import * as MemorySink from "./sink/MemorySink.js"
import type { Sink } from "./sink/Sink.js"
import * as MemoryRunStateStore from "./state/MemoryRunStateStore.js"
import * as PgRunStateStore from "./state/PgRunStateStore.js"
import type { RunStateStore } from "./state/RunStateStore.js"

/** What a sync needs besides its source: everything but the sink. */
export type Stores = LeaseLock.LeaseLock | LeaseStore | CheckpointStore | RunStateStore | OpsStore | ItemErrorStore

export type SyncServices = Stores | Sink

/** The stores on PostgreSQL (leases, checkpoints and run state through the direct pool). */
export const storesPg: Layer.Layer<Stores, never, MainDb | DirectDb> = Layer.mergeAll(
  LeaseLock.layer,
  PgCheckpointStore.layer,
  PgRunStateStore.layer,
  PgOpsStore.layer,
  PgItemErrorStore.layer
).pipe(Layer.provideMerge(PgLeaseStore.layer))

/** The stores and the documents sink on PostgreSQL. */
export const servicesPg: Layer.Layer<SyncServices, never, MainDb | DirectDb> = Layer.merge(
  storesPg,
  DocumentsSink.layer
)

/** The stores in memory, timed by `Clock` (so `TestClock` drives them). */
export const storesMemory: Layer.Layer<Stores | MemoryOpsStore.MemoryOps | MemoryCheckpointStore.MemoryCheckpoints> =
  Layer.mergeAll(LeaseLock.layer, MemoryRunStateStore.layer, MemoryItemErrorStore.layer, MemoryOpsStore.layer).pipe(
    Layer.provideMerge(Layer.merge(MemoryLeaseStore.layer, MemoryCheckpointStore.layer))
  )

/** The stores and a sink in memory. */
export const servicesMemory = (
  sink: MemorySink.MemorySinkOptions = {}
): Layer.Layer<
  SyncServices | MemorySink.MemorySink | MemoryOpsStore.MemoryOps | MemoryCheckpointStore.MemoryCheckpoints
> => Layer.merge(storesMemory, MemorySink.layer(sink))
