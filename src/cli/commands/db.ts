import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import { ConnectionTarget, DirectDb, type Endpoint, type Location, MainDb } from "../../db/Database.js"
import * as Migrations from "../../db/Migrations.js"
import { dbOptions, withDatabase } from "../DbOptions.js"
import { dbServerCommands } from "./dbServer.js"

const endpoint = (e: Endpoint) => `${e.user === "" ? "" : `${e.user}@`}${e.host}:${e.port}/${e.database}`

const report = Effect.gen(function* () {
  const target = yield* ConnectionTarget
  const main = yield* MainDb
  const direct = yield* DirectDb
  const [server] = yield* direct.sql<{ version: string; database: string }>`
    SELECT current_setting('server_version') AS version, current_database() AS database`
  const migrations = yield* Migrations.status()
  return {
    location: target.location,
    serverVersion: server?.version ?? "unknown",
    database: server?.database ?? "unknown",
    pools: [main, direct].map((pool) => ({
      role: pool.role,
      maxConnections: pool.maxConnections,
      applicationName: pool.applicationName
    })),
    migrations: {
      applied: migrations.applied.map((m) => ({
        name: Migrations.migrationName(m),
        appliedAt: m.appliedAt.toISOString()
      })),
      pending: migrations.pending.map(Migrations.migrationName)
    }
  }
})

type Report = Effect.Effect.Success<typeof report>

const startedBy = (location: Extract<Location, { _tag: "Embedded" }>) =>
  location.startedBy === "db start"
    ? "kept running by tidemark db start"
    : location.startedBy === "other"
      ? "running, not started by tidemark (never stopped by it)"
      : location.adopted
        ? "already running for another command"
        : "started by this command (stopped when it ends)"

const asText = (r: Report): string => {
  const where =
    r.location._tag === "Embedded"
      ? [
          `database    embedded PostgreSQL ${r.serverVersion}, ${startedBy(r.location)} (pid ${r.location.serverPid})`,
          `home        ${r.location.home}`,
          `socket      ${r.location.socketDir} (tidemark db url prints a connection string)`
        ]
      : [
          `database    PostgreSQL ${r.serverVersion} at ${endpoint(r.location.main)}`,
          `direct      ${endpoint(r.location.direct)}`
        ]
  return [
    ...where,
    `name        ${r.database}`,
    `pools       ${r.pools.map((p) => `${p.role} ${p.maxConnections} (${p.applicationName})`).join(", ")}`,
    `migrations  ${r.migrations.applied.length} applied, ${r.migrations.pending.length} pending`,
    ...r.migrations.applied.map((m) => `  ${m.name}  ${m.appliedAt}`),
    ...r.migrations.pending.map((name) => `  ${name}  pending`)
  ].join("\n")
}

export const dbCommand = Command.make(
  "db",
  { ...dbOptions, json: Options.boolean("json").pipe(Options.withDescription("Print the report as JSON.")) },
  (flags) =>
    report.pipe(
      Effect.flatMap((r) => Console.log(flags.json ? JSON.stringify(r) : asText(r))),
      withDatabase(flags)
    )
).pipe(
  Command.withDescription(
    "Show where the database is, its version, the pools and the migrations applied; start, stop or reach the embedded server."
  ),
  Command.withSubcommands(dbServerCommands)
)
