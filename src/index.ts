/**
 * tidemark as a library: the Layers and services an Effect program embeds.
 */
export * as Database from "./db/Database.js"
export * as DbSettings from "./db/DbSettings.js"
export * as EmbeddedServer from "./db/embedded/EmbeddedServer.js"
export * as Migrations from "./db/Migrations.js"
export * as Transient from "./db/Transient.js"
