#!/usr/bin/env node
// Peak memory of a no-change sync of a very large folder: N small files
// (default 1,000,000 of ~100 bytes) synced once, then synced again with nothing
// changed; peak RSS of each CLI process from GNU time.
//
//   node scripts/bench/memory.mjs [files=1000000] [corpus-dir=/tmp/tidemark-bench-small-N]
import { corpus, database, machine, runCli } from "./lib.mjs"

const files = Number(process.argv[2] ?? 1_000_000)
const generated = performance.now()
const dir = corpus(process.argv[3] ?? `/tmp/tidemark-bench-small-${files}`, files, 100)
console.log(machine())
console.log(
  `corpus: ${files} files of ~100 bytes in ${dir} (${((performance.now() - generated) / 1000).toFixed(0)} s to make or find)`
)
const db = await database()
const env = { DATABASE_URL: db.url }
const source = `memory-${Date.now()}`
const first = await runCli(["sync", dir, "--source", source, "--json"], env)
console.log(
  `first sync:     ${first.seconds.toFixed(1)} s, peak ${first.peakMiB.toFixed(0)} MiB, ${JSON.parse(first.stdout).imported} imported`
)
const again = await runCli(["sync", dir, "--source", source, "--json"], env)
console.log(
  `no-change sync: ${again.seconds.toFixed(1)} s, peak ${again.peakMiB.toFixed(0)} MiB, read ${JSON.parse(again.stdout).read} (target: peak < 300 MB)`
)
await db.stop()
