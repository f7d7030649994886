#!/usr/bin/env node
// Every benchmark, one after the other (npm run bench). Long: about an hour with
// the 1,000,000-file memory run. Each prints its machine, command and figures;
// BENCHMARKS.md records them.
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { root } from "./lib.mjs"

const runs = [
  ["cold-start.mjs", "7"],
  ["sync.mjs", "100000"],
  ["incremental.mjs", "100000", "1"],
  ["flush.mjs", "1000000", "30"],
  ["redo.mjs", "100000", "8"],
  ["converge.mjs", "100000", "5"],
  ["concurrency.mjs", "50000"],
  ["lease.mjs"],
  ["git.mjs", "100000", "2000"],
  ["backfills.mjs", "1000000", "50"],
  ["memory.mjs", "1000000"],
  ["jsonl.mjs", "1000", "10000", "10", "100000"],
  ["maintenance.mjs", "100000"],
  ["watch.mjs", "10000"]
]
let failed = 0
for (const [script, ...args] of runs) {
  console.log(`\n== node scripts/bench/${script} ${args.join(" ")}`)
  const result = spawnSync(process.execPath, [path.join(root, "scripts", "bench", script), ...args], {
    stdio: "inherit"
  })
  if (result.status !== 0) failed++
}
process.exitCode = failed === 0 ? 0 : 1
