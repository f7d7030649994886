#!/usr/bin/env node
// Time to converge under a SIGKILL every 5 s, against an uninterrupted import of
// the same files in the same run (target: at most 1.3× plus the restarts' overhead).
//
//   node scripts/bench/converge.mjs [files=100000] [kill-every-seconds=5]
import { spawn } from "node:child_process"
import { cli, corpus, database, machine, runCli, warm } from "./lib.mjs"

const files = Number(process.argv[2] ?? 100000)
const every = Number(process.argv[3] ?? 5)
const dir = corpus(`/tmp/tidemark-bench-corpus-${files}`, files)
const db = await database()
const env = { ...process.env, DATABASE_URL: db.url }
console.log(machine())
warm(dir)
const baseline = await runCli(["sync", dir, "--source", `bench-converge-baseline-${Date.now()}`, "--json"], {
  DATABASE_URL: db.url
})
console.log(`uninterrupted import: ${baseline.seconds.toFixed(2)} s`)
const source = `bench-converge-${Date.now()}`
const started = performance.now()
let restarts = 0
for (;;) {
  const child = spawn(process.execPath, [cli, "sync", dir, "--source", source, "--json"], { env, stdio: "ignore" })
  const timer = setTimeout(() => child.kill("SIGKILL"), every * 1000)
  const code = await new Promise((resolve) => child.on("close", (c) => resolve(c)))
  clearTimeout(timer)
  if (code === 0) break
  restarts++
}
const total = (performance.now() - started) / 1000
// Start-up cost of one run, measured as a no-change sync of the finished source.
const restartCost = (await runCli(["sync", dir, "--source", source, "--json"], { DATABASE_URL: db.url })).seconds
console.log(`under a SIGKILL every ${every} s: ${total.toFixed(2)} s, ${restarts} kills`)
console.log(
  `ratio ${(total / baseline.seconds).toFixed(2)}× the uninterrupted import; without the restarts' overhead (${restarts} × ${restartCost.toFixed(2)} s, a no-change run each): ${((total - restarts * restartCost) / baseline.seconds).toFixed(2)}× (target ≤ 1.3×)`
)
await db.stop()
