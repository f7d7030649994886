#!/usr/bin/env node
// Lease lock figures, on the embedded server (or $DATABASE_URL):
//  1. takeover time: a holder with the default timings (ttl 30 s, renew 10 s)
//     is SIGKILLed at a random point of its renewal cycle while a second
//     process waits (default poll cap 2 s); time from the kill to the grant.
//  2. fencing cost: 1000-row `INSERT … SELECT FROM unnest` batches with and
//     without the fence (`SELECT … FOR SHARE` of the lease row) in the same
//     transaction, interleaved so that noise hits both alike.
//
//   node scripts/bench/lease.mjs [takeover-runs=3] [batches=200]
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { Effect, Exit, Layer, Option, Redacted, Scope } from "effect"
import { Database, DbSettings, EmbeddedServer, LeaseLock, Migrations, PgLeaseStore } from "../../dist/index.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const worker = path.join(root, "test", "fixtures", "lease-worker.mjs")
const takeoverRuns = Number(process.argv[2] ?? 3)
const batches = Number(process.argv[3] ?? 200)

const scope = Effect.runSync(Scope.make())
let url = process.env.DATABASE_URL
if (!url) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-bench-lease-"))
  const server = await Effect.runPromise(Scope.extend(EmbeddedServer.make(home), scope))
  url = Redacted.value(server.url)
}
const settings = DbSettings.layer({
  databaseUrl: Option.some(Redacted.make(url)),
  directDatabaseUrl: Option.none(),
  home: "/unused",
  mainPoolSize: 4,
  directPoolSize: 2
})
const dbLayer = Database.layer.pipe(Layer.provideMerge(settings))
const run = (effect) => Effect.runPromise(effect.pipe(Effect.provide(dbLayer)))
await run(Migrations.migrate())
await run(
  Effect.flatMap(
    Database.MainDb,
    ({ sql }) => sql`CREATE TABLE IF NOT EXISTS lease_writes (token bigint, pid int, n int)`
  )
)

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const startWorker = (env) => {
  const child = spawn(process.execPath, [worker], { env: { ...process.env, DATABASE_URL: url, ...env } })
  const lines = readline.createInterface({ input: child.stdout })
  const acquired = new Promise((resolve) => lines.on("line", (line) => line.includes('"acquired"') && resolve()))
  return { child, acquired }
}

console.log(
  `node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`
)
console.log(
  `1. SIGKILL → next grant, default timings (ttl 30 s, renew 10 s, deadline 20 s, poll ≤ 2 s), ${takeoverRuns} runs`
)
const takeovers = []
for (let i = 0; i < takeoverRuns; i++) {
  const name = `bench:takeover:${i}`
  const a = startWorker({ LEASE_NAME: name, LEASE_TTL_MS: "30000" })
  await a.acquired
  const b = startWorker({ LEASE_NAME: name, LEASE_TTL_MS: "30000", LEASE_WAIT_MS: "120000", LEASE_MAX_POLL_MS: "2000" })
  // Kill at a random phase of a's 10 s renewal cycle.
  await new Promise((resolve) => setTimeout(resolve, 2000 + Math.random() * 10000))
  const killedAt = performance.now()
  a.child.kill("SIGKILL")
  await b.acquired
  const seconds = (performance.now() - killedAt) / 1000
  takeovers.push(seconds)
  console.log(`   run ${i + 1}: ${seconds.toFixed(2)} s`)
  b.child.kill("SIGTERM")
  await new Promise((resolve) => b.child.once("close", resolve))
}
console.log(
  `   median ${median(takeovers).toFixed(2)} s, max ${Math.max(...takeovers).toFixed(2)} s (bound: ttl + poll = 32 s)`
)

console.log(`2. fencing cost: ${batches} batches of 1000 rows each way, interleaved`)
const fencing = Effect.gen(function* () {
  const lock = yield* LeaseLock.LeaseLock
  const { sql } = yield* Database.MainDb
  yield* sql`CREATE TABLE IF NOT EXISTS bench_rows (k text PRIMARY KEY, v text NOT NULL)`
  yield* sql`TRUNCATE bench_rows`
  const lease = yield* lock.acquire("bench:fence")
  const batch = (i, fenced) => {
    const keys = Array.from({ length: 1000 }, (_, j) => `${fenced ? "f" : "u"}-${i}-${j}`)
    const insert = sql`INSERT INTO bench_rows (k, v) SELECT * FROM unnest(${keys}::text[], ${keys}::text[])`
    return Database.transaction(sql)(fenced ? Effect.zipRight(lease.fence, insert) : insert)
  }
  const timed = (self) =>
    Effect.gen(function* () {
      const started = performance.now()
      yield* self
      return performance.now() - started
    })
  const fenced = []
  const unfenced = []
  for (let i = 0; i < batches; i++) {
    unfenced.push(yield* timed(batch(i, false)))
    fenced.push(yield* timed(batch(i, true)))
  }
  const fenceAlone = []
  for (let i = 0; i < batches; i++) fenceAlone.push(yield* timed(Database.transaction(sql)(lease.fence)))
  return { fenced: median(fenced), unfenced: median(unfenced), fenceAlone: median(fenceAlone) }
}).pipe(Effect.scoped, Effect.provide(LeaseLock.layer.pipe(Layer.provide(PgLeaseStore.layer))))
const costs = await run(fencing)
console.log(
  `   median per batch: unfenced ${costs.unfenced.toFixed(2)} ms, fenced ${costs.fenced.toFixed(2)} ms, ratio ${(costs.fenced / costs.unfenced).toFixed(3)}×`
)
console.log(`   a transaction holding only the fence: ${costs.fenceAlone.toFixed(2)} ms`)
await Effect.runPromise(Scope.close(scope, Exit.void))
