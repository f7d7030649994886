#!/usr/bin/env node
// Incremental folder sync: N files synced, then 1% of them changed; the sync that
// follows, against a no-change sync and the full import, in one run.
//
//   node scripts/bench/incremental.mjs [files=100000] [changed-percent=1]
import * as fs from "node:fs"
import * as path from "node:path"
import { corpus, database, machine, median, runCli, warm } from "./lib.mjs"

const files = Number(process.argv[2] ?? 100000)
const percent = Number(process.argv[3] ?? 1)
const dir = corpus(`/tmp/tidemark-bench-incremental-${files}`, files)
const db = await database()
const env = { DATABASE_URL: db.url }
const source = `bench-incremental-${Date.now()}`
const sync = async () => {
  const result = await runCli(["sync", dir, "--source", source, "--json"], env)
  return { seconds: result.seconds, summary: JSON.parse(result.stdout) }
}
console.log(machine())
warm(dir)
const full = await sync()
console.log(`full import: ${full.seconds.toFixed(2)} s (${full.summary.imported} files)`)
const noChange = []
for (let i = 0; i < 3; i++) noChange.push((await sync()).seconds)
const incremental = []
let read = 0
const count = Math.round((files * percent) / 100)
for (let round = 0; round < 3; round++) {
  // Every 100th file, shifted each round: 1% of the corpus changes (content, size and
  // mtime). The new mtime lies in the past, as for edits made a while before the sync:
  // a file modified within the last 2 s would be read again by the next sync too.
  const editedAt = new Date(Date.UTC(2025, 5, 1, 0, 0, round))
  for (let i = 0; i < count; i++) {
    const n = (i * Math.floor(100 / percent) + round) % files
    const file = path.join(dir, `d${n % 100}`, `note-${n}.md`)
    fs.appendFileSync(file, `edited in round ${round}\n`)
    fs.utimesSync(file, editedAt, editedAt)
  }
  const result = await sync()
  incremental.push(result.seconds)
  read = result.summary.read
}
console.log(`no-change sync: median ${median(noChange).toFixed(2)} s`)
console.log(
  `incremental sync after ${count} files (${percent}%) changed: median ${median(incremental).toFixed(2)} s (${incremental.map((s) => s.toFixed(2)).join(", ")}), read ${read}`
)
console.log(
  `ratios: incremental / no-change ${(median(incremental) / median(noChange)).toFixed(2)}×, incremental / full import ${(median(incremental) / full.seconds).toFixed(3)}×`
)
await db.stop()
