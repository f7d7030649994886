#!/usr/bin/env node
// The folder sync of this checkout against an earlier revision, in one run on
// one database (the fair comparison on a shared, noisy machine): a first import
// each, then no-change syncs alternating between the two builds.
//
//   node scripts/bench/compare.mjs <revision> [files=100000] [rounds=5]
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { cli, corpus, database, machine, median, root, warm } from "./lib.mjs"

const revision = process.argv[2]
if (!revision) throw new Error("usage: compare.mjs <revision> [files] [rounds]")
const files = Number(process.argv[3] ?? 100000)
const rounds = Number(process.argv[4] ?? 5)
const dir = corpus(`/tmp/tidemark-bench-corpus-${files}`, files)

const worktree = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-compare-"))
execFileSync("git", ["-C", root, "worktree", "add", "-q", "--detach", worktree, revision])
try {
  fs.symlinkSync(path.join(root, "node_modules"), path.join(worktree, "node_modules"))
  execFileSync("npm", ["run", "build"], { cwd: worktree, stdio: "ignore" })
  const db = await database()
  const run = (bin, source) => {
    const started = performance.now()
    const result = spawnSync(process.execPath, [bin, "sync", dir, "--source", source, "--json"], {
      env: { ...process.env, DATABASE_URL: db.url },
      encoding: "utf8"
    })
    if (result.status !== 0) throw new Error(`${bin} exited ${result.status}: ${result.stderr.slice(-400)}`)
    return (performance.now() - started) / 1000
  }
  const builds = { [revision]: path.join(worktree, "bin", "tidemark.js"), "this checkout": cli }
  console.log(machine())
  // Both builds on a warm page cache (the first one would otherwise pay for the disk).
  warm(dir)
  const first = Object.fromEntries(Object.entries(builds).map(([name, bin]) => [name, run(bin, name)]))
  const noChange = Object.fromEntries(Object.keys(builds).map((name) => [name, []]))
  for (let i = 0; i < rounds; i++) for (const [name, bin] of Object.entries(builds)) noChange[name].push(run(bin, name))
  for (const name of Object.keys(builds)) {
    console.log(
      `${name.padEnd(14)} first import ${first[name].toFixed(2)} s, no-change median ${median(noChange[name]).toFixed(2)} s (${noChange[name].map((s) => s.toFixed(2)).join(", ")})`
    )
  }
  const [before, after] = Object.keys(builds)
  console.log(
    `ratio this checkout / ${before}: first import ${(first[after] / first[before]).toFixed(2)}×, no-change ${(median(noChange[after]) / median(noChange[before])).toFixed(2)}×`
  )
  await db.stop()
} finally {
  execFileSync("git", ["-C", root, "worktree", "remove", "--force", worktree])
}
