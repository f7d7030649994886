#!/usr/bin/env node
// Folder sync against its floor, in one run on one database:
//   full sync of N files of ~2 KB (a fresh source each time) and the floor: read
//   and sha256 every file and COPY the same rows into an empty table (what any
//   importer must at least do; floor.mjs, a process timed like the CLI's), in
//   `rounds` pairs whose order alternates (this
//   machine is shared and noisy, and the page cache favours whichever runs
//   second); then a no-change sync.
//
//   node scripts/bench/sync.mjs [files=100000] [corpus-dir=/tmp/tidemark-bench-corpus-N] [rounds=3]
// Needs GNU time (/usr/bin/time, Debian package `time`) for peak memory.
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import pg from "pg"
import { corpus, database, machine, median, runCli, warm } from "./lib.mjs"

const files = Number(process.argv[2] ?? 100000)
const dir = corpus(process.argv[3] ?? `/tmp/tidemark-bench-corpus-${files}`, files)
const rounds = Number(process.argv[4] ?? 3)
const db = await database()
const env = { DATABASE_URL: db.url }
console.log(machine())
console.log(`corpus: ${files} files in ${dir}`)

// Read every file once, so that the sync and the floor both run on a warm page
// cache (otherwise the first measurement pays for the disk and the floor does not).
const warming = performance.now()
warm(dir)
console.log(`page cache warmed in ${((performance.now() - warming) / 1000).toFixed(2)} s`)

const fullSync = async (sourceName) => {
  const full = await runCli(["sync", dir, "--source", sourceName, "--json"], env)
  const summary = JSON.parse(full.stdout)
  console.log(
    `full sync:      ${full.seconds.toFixed(2)} s, peak ${full.peakMiB.toFixed(0)} MiB, imported ${summary.imported}`
  )
  return full.seconds
}

// The floor (scripts/bench/floor.mjs) into an empty table, timed like the CLI:
// from the start of its process to its exit. Also its time after connecting,
// the in-process floor of earlier reports (which leaves out what the CLI's
// time includes: starting node, loading modules, connecting).
const floorScript = path.join(path.dirname(fileURLToPath(import.meta.url)), "floor.mjs")
const floor = async () => {
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  await client.query("DROP TABLE IF EXISTS bench_floor")
  await client.query("CREATE TABLE bench_floor (key text PRIMARY KEY, version text, size bigint, content text)")
  const run = await runCli([db.url, dir, "bench_floor"], {}, floorScript)
  const inProcess = JSON.parse(run.stdout)
  await client.query("DROP TABLE bench_floor")
  await client.end()
  if (inProcess.rows !== files) throw new Error(`the floor copied ${inProcess.rows} rows, not ${files}`)
  console.log(
    `floor (list, read, sha256, COPY): ${run.seconds.toFixed(2)} s as a process, ${inProcess.seconds.toFixed(2)} s after connecting`
  )
  return { process: run.seconds, inProcess: inProcess.seconds }
}

const ratios = []
const inProcessRatios = []
let sourceName
for (let round = 0; round < rounds; round++) {
  // Every file read once first: neither measurement pays for the disk.
  warm(dir)
  sourceName = `bench-${Date.now()}`
  let full, floorSeconds
  if (round % 2 === 0) {
    full = await fullSync(sourceName)
    floorSeconds = await floor()
  } else {
    floorSeconds = await floor()
    full = await fullSync(sourceName)
  }
  ratios.push(full / floorSeconds.process)
  inProcessRatios.push(full / floorSeconds.inProcess)
  console.log(
    `round ${round + 1}: full sync / floor ${(full / floorSeconds.process).toFixed(2)}× (${(full / floorSeconds.inProcess).toFixed(2)}× the in-process floor)`
  )
}
const noChange = await runCli(["sync", dir, "--source", sourceName, "--json"], env)
const noChangeSummary = JSON.parse(noChange.stdout)
console.log(
  `no-change sync: ${noChange.seconds.toFixed(2)} s, peak ${noChange.peakMiB.toFixed(0)} MiB, read ${noChangeSummary.read}`
)
const list = (xs) => xs.map((r) => r.toFixed(2)).join(", ")
console.log(
  `ratio full sync / floor: median ${median(ratios).toFixed(2)}× of ${list(ratios)} (target ≤ 1.5×); no-change sync ${noChange.seconds.toFixed(2)} s (target < 2 s)`
)
console.log(`against the in-process floor: median ${median(inProcessRatios).toFixed(2)}× of ${list(inProcessRatios)}`)
await db.stop()
