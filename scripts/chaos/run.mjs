#!/usr/bin/env node
// The fault-injection suite: every scenario against the real CLI and a real
// (embedded) PostgreSQL on this machine, one line each:
//   scenario, runs, faults injected, items lost, duplicates, database = source.
//
//   node scripts/chaos/run.mjs [--short] [scenario ...]     (npm run chaos)
// --short runs fewer iterations (what CI runs). Exit 1 if any scenario fails.
import { machine, scratchTmpdir } from "../bench/lib.mjs"
import { runTidemark, server } from "./lib.mjs"

const all = [
  "sigkill",
  "sigterm",
  "pool",
  "restart",
  "split-brain",
  "proxy",
  "pgbouncer",
  "bad-input",
  "git-sigkill",
  "jsonl-sigkill",
  "fleet",
  "fleet-schedule"
]
const files = {
  sigkill: "./sigkill.mjs",
  sigterm: "./sigterm.mjs",
  pool: "./pool.mjs",
  restart: "./restart.mjs",
  "split-brain": "./splitbrain.mjs",
  proxy: "./proxy.mjs",
  pgbouncer: "./pgbouncer.mjs",
  "bad-input": "./badinput.mjs",
  "git-sigkill": "./gitkill.mjs",
  "jsonl-sigkill": "./jsonlkill.mjs",
  fleet: "./fleet.mjs",
  "fleet-schedule": "./fleetschedule.mjs"
}
const args = process.argv.slice(2)
const short = args.includes("--short")
const chosen = args.filter((a) => !a.startsWith("--"))
for (const name of chosen) if (!all.includes(name)) throw new Error(`no scenario ${name}; there are: ${all.join(", ")}`)

console.log(`${machine()}${short ? ", short run" : ""}`)
// Every folder a scenario makes lives under one scratch folder: removed after a
// passing run, kept (and named) after a failing one, for a look at what happened.
const scratch = scratchTmpdir("chaos-run")
const db = await server()
// The schema first: scenarios look at tidemark's tables before their first sync.
const migrated = await runTidemark(["migrate"], { DATABASE_URL: db.url })
if (migrated.code !== 0) throw new Error(`migrate failed: ${migrated.stderr}`)
const rows = []
try {
  for (const name of chosen.length > 0 ? chosen : all) {
    const started = performance.now()
    let row
    try {
      const scenario = await import(files[name])
      row = { name, ...(await scenario.run({ ...db, short })) }
    } catch (error) {
      row = {
        name,
        runs: "-",
        faults: "-",
        lost: "-",
        duplicates: "-",
        equal: false,
        ok: false,
        detail: `error: ${error.message}`
      }
    }
    row.seconds = (performance.now() - started) / 1000
    rows.push(row)
    console.log(
      `${row.ok ? "PASS" : "FAIL"} ${name.padEnd(12)} runs ${String(row.runs).padStart(4)}  faults ${String(row.faults).padStart(4)}  lost ${row.lost}  duplicates ${row.duplicates}  database = source: ${row.equal ? "yes" : "NO"}  (${row.seconds.toFixed(0)} s; ${row.detail})`
    )
  }
} finally {
  await db.stop()
}
console.log(
  "\n| scenario | runs | faults | lost | duplicates | database = source | result | notes |\n|---|---|---|---|---|---|---|---|"
)
for (const r of rows) {
  console.log(
    `| ${r.name} | ${r.runs} | ${r.faults} | ${r.lost} | ${r.duplicates} | ${r.equal ? "yes" : "no"} | ${r.ok ? "pass" : "FAIL"} | ${r.detail} (${r.seconds.toFixed(0)} s) |`
  )
}
if (rows.every((r) => r.ok)) scratch.remove()
else console.log(`\nscratch folders kept in ${scratch.dir}`)
process.exitCode = rows.every((r) => r.ok) ? 0 : 1
