#!/usr/bin/env node
// Startup cost of the backfill check once every step is complete, on a database
// holding N documents: wall time and the statements it sends (counted in the
// server's statement log between two markers). Also the one-off cost of the
// title backfill itself over those documents.
//
//   node scripts/bench/backfills.mjs [documents=1000000] [checks=50]
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import pg from "pg"
import { Backfills, Database, Migrations, titleBackfill } from "../../dist/index.js"
import { database, machine, median, settingsLayer } from "./lib.mjs"

const documents = Number(process.argv[2] ?? 1_000_000)
const checks = Number(process.argv[3] ?? 50)
const db = await database()
if (db.home === undefined) throw new Error("needs the embedded server (its statement log): unset DATABASE_URL")
const logFile = path.join(db.home, "log", "postgresql.log")
const settings = settingsLayer(db.url)
const layers = Layer.mergeAll(
  Database.layer,
  Backfills.register(titleBackfill).pipe(Layer.provideMerge(Backfills.Backfills.Default))
).pipe(Layer.provide(settings))
const run = (effect) => Effect.runPromise(Effect.scoped(effect).pipe(Effect.provide(layers)))

console.log(machine())
await run(Migrations.migrate())
const client = new pg.Client({ connectionString: db.url })
await client.connect()
let started = performance.now()
await client.query("INSERT INTO tidemark.sources (id, kind, root) VALUES ('bench', 'dir', '/bench')")
await client.query(
  `INSERT INTO tidemark.documents (source_id, key, version, size, content, title)
   SELECT 'bench', 'd' || (i % 100) || '/note-' || i || '.md', md5(i::text), 40, '# Note ' || i || E'\\n\\nbody\\n', 'Note ' || i
     FROM generate_series(1, $1::int) AS i`,
  [documents]
)
console.log(`${documents} documents inserted in ${((performance.now() - started) / 1000).toFixed(1)} s`)

started = performance.now()
const first = await run(Backfills.runPending())
console.log(
  `first start: ${first.map((o) => `${o.step} v${o.version} ${o._tag}`).join(", ")} in ${((performance.now() - started) / 1000).toFixed(1)} s (the title backfill over ${documents} documents, once)`
)

// Later starts: every step complete. Statements are logged from here on.
const { rows } = await client.query("SELECT current_database() AS name")
await client.query(`ALTER DATABASE "${rows[0].name}" SET log_statement = 'all'`)
const times = []
const statements = []
await run(
  Effect.gen(function* () {
    const { sql } = yield* Database.MainDb
    for (let i = 0; i < checks; i++) {
      yield* sql`SELECT ${`bench-marker-${i}-start`}::text`
      const t = performance.now()
      const outcomes = yield* Backfills.runPending()
      times.push(performance.now() - t)
      if (outcomes.some((o) => o._tag !== "AlreadyDone")) throw new Error("a backfill ran again")
      yield* sql`SELECT ${`bench-marker-${i}-end`}::text`
    }
  })
)
await client.query(`ALTER DATABASE "${rows[0].name}" RESET log_statement`)
await client.end()
const log = fs.readFileSync(logFile, "utf8").split("\n")
for (let i = 0; i < checks; i++) {
  const from = log.findIndex((line) => line.includes(`bench-marker-${i}-start`))
  const to = log.findIndex((line) => line.includes(`bench-marker-${i}-end`))
  // The markers' own lines (statement, parameters) are between or on the bounds; count statements strictly between.
  statements.push(log.slice(from + 1, to).filter((line) => /LOG: {2}(statement|execute [^:]*):/.test(line)).length - 1)
}
console.log(
  `backfill check with every step complete: median ${median(times).toFixed(2)} ms (max ${Math.max(...times).toFixed(2)} ms) over ${checks}; statements per check: ${[...new Set(statements)].join(", ")}`
)
await db.stop()
