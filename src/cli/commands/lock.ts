import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Layer, Option } from "effect"
import * as LeaseLock from "../../lock/LeaseLock.js"
import type { LeaseRow } from "../../lock/LeaseStore.js"
import * as PgLeaseStore from "../../lock/PgLeaseStore.js"
import { type DbFlags, dbOptions, withDatabase } from "../DbOptions.js"
import { UsageError } from "../UsageError.js"

const leaseLockLayer = LeaseLock.layer.pipe(Layer.provide(PgLeaseStore.layer))

const seconds = (millis: number) => `${(millis / 1000).toFixed(1)}s`

const asJson = (row: LeaseRow) => ({
  name: row.name,
  holder: row.holder,
  host: row.host,
  pid: row.pid,
  token: row.token,
  ageSeconds: row.ageMillis / 1000,
  heartbeatAgeSeconds: row.sinceHeartbeatMillis / 1000,
  expiresInSeconds: row.expiresInMillis / 1000
})

const table = (rows: ReadonlyArray<LeaseRow>): string => {
  const header = ["NAME", "HOLDER", "TOKEN", "AGE", "HEARTBEAT", "EXPIRES IN"]
  const lines = rows.map((row) => [
    row.name,
    `pid ${row.pid} on ${row.host}`,
    String(row.token),
    seconds(row.ageMillis),
    `${seconds(row.sinceHeartbeatMillis)} ago`,
    row.expiresInMillis < 0 ? `expired ${seconds(-row.expiresInMillis)} ago` : seconds(row.expiresInMillis)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  return [header, ...lines]
    .map((cells) =>
      cells
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

const json = Options.boolean("json").pipe(Options.withDescription("Print JSON."))

const listCommand = Command.make("list", { ...dbOptions, json }, (flags) =>
  Effect.gen(function* () {
    const lock = yield* LeaseLock.LeaseLock
    const rows = yield* lock.list
    yield* Console.log(
      flags.json ? JSON.stringify(rows.map(asJson)) : rows.length === 0 ? "no leases held" : table(rows)
    )
  }).pipe(Effect.provide(leaseLockLayer), withDatabase(flags))
).pipe(Command.withDescription("Show every lease: holder, fencing token, age, heartbeat age, time to expiry."))

const forceRelease = (flags: DbFlags & { readonly name: string; readonly json: boolean }) =>
  Effect.gen(function* () {
    const lock = yield* LeaseLock.LeaseLock
    const removed = yield* lock.forceRelease(flags.name)
    yield* Option.match(removed, {
      onNone: () => Console.log(flags.json ? JSON.stringify({ released: null }) : `no lease named ${flags.name}`),
      onSome: (row) =>
        Console.log(
          flags.json
            ? JSON.stringify({ released: asJson(row) })
            : `released ${row.name}: held by pid ${row.pid} on ${row.host} (token ${row.token}, heartbeat ${seconds(row.sinceHeartbeatMillis)} ago)`
        )
    })
  }).pipe(Effect.provide(leaseLockLayer), withDatabase(flags))

const releaseCommand = Command.make(
  "release",
  {
    ...dbOptions,
    json,
    name: Args.text({ name: "NAME" }).pipe(Args.withDescription("The lease, e.g. sync:notes.")),
    force: Options.boolean("force").pipe(
      Options.withDescription("Required: the holder may be alive, and loses the lease at its next renewal.")
    )
  },
  (flags) =>
    flags.force
      ? forceRelease(flags)
      : new UsageError({
          message: `refusing to release lease ${flags.name} without --force`,
          hint: "a live holder stops at its next renewal; check `tidemark lock list` first"
        })
).pipe(Command.withDescription("Remove a lease whoever holds it (operator override)."))

export const lockCommand = Command.make("lock").pipe(
  Command.withDescription("Inspect and override the single-flight leases."),
  Command.withSubcommands([listCommand, releaseCommand])
)
