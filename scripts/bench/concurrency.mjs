#!/usr/bin/env node
// Throughput of a first import at --concurrency 1, 2, 4, 8 (fresh source each,
// interleaved twice), to find where more reads at once stop helping on this machine.
//
//   node scripts/bench/concurrency.mjs [files=50000]
import { corpus, database, machine, median, runCli, warm } from "./lib.mjs"

const files = Number(process.argv[2] ?? 50000)
const dir = corpus(`/tmp/tidemark-bench-corpus-${files}`, files)
const db = await database()
console.log(machine())
warm(dir)
const levels = [1, 2, 4, 8]
const times = Object.fromEntries(levels.map((c) => [c, []]))
for (let round = 0; round < 2; round++) {
  for (const c of levels) {
    const result = await runCli(
      ["sync", dir, "--source", `bench-conc-${c}-${Date.now()}`, "--json", "--concurrency", String(c)],
      { DATABASE_URL: db.url }
    )
    times[c].push(result.seconds)
  }
}
for (const c of levels) {
  const seconds = median(times[c])
  console.log(
    `--concurrency ${c}: ${(files / seconds).toFixed(0)} files/s (${times[c].map((s) => s.toFixed(2)).join(", ")} s)`
  )
}
await db.stop()
