#!/usr/bin/env node
// Folder sync against its floor, in one run on one database:
//   full sync of N files of ~2 KB (a fresh source each time) and the floor: read
//   and sha256 every file and COPY the same rows into an empty table (what any
//   importer must at least do), in `rounds` pairs whose order alternates (this
//   machine is shared and noisy, and the page cache favours whichever runs
//   second); then a no-change sync.
//
//   node scripts/bench/sync.mjs [files=100000] [corpus-dir=/tmp/tidemark-bench-corpus-N] [rounds=3]
// Needs GNU time (/usr/bin/time, Debian package `time`) for peak memory.
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { pipeline } from "node:stream/promises"
import { Readable } from "node:stream"
import pg from "pg"
import copyStreams from "pg-copy-streams"
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
  console.log(`full sync:      ${full.seconds.toFixed(2)} s, peak ${full.peakMiB.toFixed(0)} MiB, imported ${summary.imported}`)
  return full.seconds
}

// The floor, in this process: list, read, hash, COPY.
const escape = (s) => s.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r")
const floor = async () => {
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  await client.query("DROP TABLE IF EXISTS bench_floor")
  await client.query("CREATE TABLE bench_floor (key text PRIMARY KEY, version text, size bigint, content text)")
  const started = performance.now()
  const keys = []
  const walk = (d, prefix) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name), `${prefix}${e.name}/`)
      else if (e.isFile() && !e.name.startsWith(".")) keys.push(`${prefix}${e.name}`)
    }
  }
  walk(dir, "")
  async function* rows() {
    for (const key of keys) {
      const bytes = fs.readFileSync(path.join(dir, key))
      const hash = createHash("sha256").update(bytes).digest("hex")
      yield `${escape(key)}\t${hash}\t${bytes.length}\t${escape(bytes.toString("utf8"))}\n`
    }
  }
  await pipeline(
    Readable.from(rows()),
    client.query(copyStreams.from("COPY bench_floor (key, version, size, content) FROM STDIN"))
  )
  const seconds = (performance.now() - started) / 1000
  await client.query("DROP TABLE bench_floor")
  await client.end()
  console.log(`floor (read + sha256 + COPY, in process): ${seconds.toFixed(2)} s`)
  return seconds
}

const ratios = []
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
  ratios.push(full / floorSeconds)
  console.log(`round ${round + 1}: ratio full sync / floor ${(full / floorSeconds).toFixed(2)}×`)
}
const noChange = await runCli(["sync", dir, "--source", sourceName, "--json"], env)
const noChangeSummary = JSON.parse(noChange.stdout)
console.log(
  `no-change sync: ${noChange.seconds.toFixed(2)} s, peak ${noChange.peakMiB.toFixed(0)} MiB, read ${noChangeSummary.read}`
)
console.log(
  `ratio full sync / floor: median ${median(ratios).toFixed(2)}× of ${ratios.map((r) => r.toFixed(2)).join(", ")} (target ≤ 1.5×); no-change sync ${noChange.seconds.toFixed(2)} s (target < 2 s)`
)
await db.stop()
