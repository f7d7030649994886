#!/usr/bin/env node
// Cold start of the CLI: `tidemark --help` (no database), and `tidemark db` on
// the embedded server in three states: a fresh home (initdb + start + migrate),
// an initialized home whose server is stopped (start), and a server already
// running for another process (adopt). Median of N runs each, wall clock.
//
//   node scripts/bench/cold-start.mjs [runs]
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const cli = path.join(root, "bin", "tidemark.js")
const runs = Number(process.argv[2] ?? 7)
const env = { ...process.env }
delete env.DATABASE_URL
delete env.DIRECT_DATABASE_URL

const time = (args, home) => {
  const started = performance.now()
  const result = spawnSync(process.execPath, [cli, ...args], { env: { ...env, TIDEMARK_HOME: home }, encoding: "utf8" })
  if (result.status !== 0) throw new Error(`tidemark ${args.join(" ")} failed: ${result.stderr}`)
  return performance.now() - started
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const freshHome = () => fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-bench-"))
const measure = (label, f) => {
  const samples = Array.from({ length: runs }, f)
  console.log(
    `${label.padEnd(44)} median ${median(samples).toFixed(0).padStart(5)} ms   (min ${Math.min(...samples).toFixed(0)}, max ${Math.max(...samples).toFixed(0)}, n=${runs})`
  )
  return median(samples)
}

console.log(
  `node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`
)
const help = measure("tidemark --help", () => time(["--help"], freshHome()))
const first = measure("tidemark db, fresh home (initdb+start+migrate)", () => time(["db"], freshHome()))
const stoppedHome = freshHome()
time(["db"], stoppedHome)
const warm = measure("tidemark db, initialized home, server stopped", () => time(["db"], stoppedHome))

const runningHome = freshHome()
const holder = spawn(process.execPath, [path.join(root, "test", "fixtures", "hold-embedded.mjs")], {
  env: { ...env, TIDEMARK_HOME: runningHome }
})
await new Promise((resolve) => readline.createInterface({ input: holder.stdout }).once("line", resolve))
const adopt = measure("tidemark db, server already running (adopt)", () => time(["db"], runningHome))
holder.kill("SIGTERM")
await new Promise((resolve) => holder.once("close", resolve))
console.log(
  `ratios: fresh/help ${(first / help).toFixed(1)}×, stopped/help ${(warm / help).toFixed(1)}×, adopt/help ${(adopt / help).toFixed(1)}×`
)
