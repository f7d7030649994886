#!/usr/bin/env node
// Redo after SIGKILL: a 100,000-file import killed at random moments. For each
// kill: what was written and what was banked at that moment, how many items the
// resumed run read that had already been written (redone work, in items), and
// the resumed run's cost beyond the work that was left (in seconds: start-up,
// lease, planning again), against the rate of an uninterrupted import measured
// in the same run.
//
//   node scripts/bench/redo.mjs [files=100000] [kills=8]
import { spawn } from "node:child_process"
import pg from "pg"
import { cli, corpus, database, machine, median, runCli, warm } from "./lib.mjs"

const files = Number(process.argv[2] ?? 100000)
const kills = Number(process.argv[3] ?? 8)
const dir = corpus(`/tmp/tidemark-bench-corpus-${files}`, files)
const db = await database()
const env = { DATABASE_URL: db.url }
const client = new pg.Client({ connectionString: db.url })
console.log(machine())
warm(dir)
const baseline = await runCli(["sync", dir, "--source", `bench-redo-baseline-${Date.now()}`, "--json"], env)
const perItem = baseline.seconds / files
console.log(`uninterrupted import: ${baseline.seconds.toFixed(2)} s (${(files / baseline.seconds).toFixed(0)} files/s)`)
await client.connect()
const one = async (sql, values) => (await client.query(sql, values)).rows[0]
const rows = []
for (let k = 0; k < kills; k++) {
  const source = `bench-redo-${Date.now()}-${k}`
  const child = spawn(process.execPath, [cli, "sync", dir, "--source", source, "--json"], {
    env: { ...process.env, ...env },
    stdio: "ignore"
  })
  const closed = new Promise((resolve) => child.on("close", resolve))
  await new Promise((resolve) => setTimeout(resolve, (0.15 + 0.6 * Math.random()) * baseline.seconds * 1000))
  if (child.exitCode !== null) {
    console.log(`kill ${k + 1}: the sync finished first; not counted`)
    continue
  }
  child.kill("SIGKILL")
  await closed
  const { n: written } = await one("SELECT count(*)::int AS n FROM tidemark.documents WHERE source_id = $1", [source])
  const op = await one("SELECT banked::int FROM tidemark.ops WHERE source_id = $1 AND status = 'open'", [source])
  const resumed = await runCli(["sync", dir, "--source", source, "--json"], env)
  const read = JSON.parse(resumed.stdout).read
  const left = files - written
  rows.push({ written, banked: op?.banked ?? 0, redoneItems: read - left, overhead: resumed.seconds - left * perItem })
  console.log(
    `kill ${k + 1}: written ${written}, banked ${op?.banked ?? 0}; resume read ${read} (left ${left}): ${read - left} items redone; resume ${resumed.seconds.toFixed(2)} s, ${(resumed.seconds - left * perItem).toFixed(2)} s beyond the work left`
  )
}
await client.end()
console.log(
  `redo per kill: max ${Math.max(...rows.map((r) => r.redoneItems))} items redone; written but unbanked at the kill: max ${Math.max(...rows.map((r) => r.written - r.banked))} (not redone: the plan finds them stored); resume overhead median ${median(rows.map((r) => r.overhead)).toFixed(2)} s`
)
await db.stop()
