/**
 * tidemark as a library: the Layers and services an Effect program embeds.
 */
export * as Database from "./db/Database.js"
export * as DbSettings from "./db/DbSettings.js"
export * as EmbeddedServer from "./db/embedded/EmbeddedServer.js"
export * as Migrations from "./db/Migrations.js"
export * as Transient from "./db/Transient.js"
export * as LeaseErrors from "./lock/errors.js"
export * as LeaseLock from "./lock/LeaseLock.js"
export * as LeaseStore from "./lock/LeaseStore.js"
export * as LeaseTimings from "./lock/LeaseTimings.js"
export * as MemoryLeaseStore from "./lock/MemoryLeaseStore.js"
export * as PgLeaseStore from "./lock/PgLeaseStore.js"
