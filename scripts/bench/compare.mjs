#!/usr/bin/env node
// The folder sync of this checkout against an earlier revision, in one run (the
// fair comparison on a shared, noisy machine): `rounds` first imports each, in
// alternating order, with the CPU of the CLI and of the server, then no-change
// syncs alternating between the two builds. Each build has a server of its own:
// their schemas may differ.
//
//   node scripts/bench/compare.mjs <revision> [files=100000] [rounds=5]
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { cli, corpus, database, machine, median, root, runCli, warm } from "./lib.mjs"

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
  const builds = { [revision]: path.join(worktree, "bin", "tidemark.js"), "this checkout": cli }
  const databases = Object.fromEntries(
    await Promise.all(Object.keys(builds).map(async (name) => [name, await database()]))
  )
  const run = (name, source) =>
    runCli(["sync", dir, "--source", source, "--json"], { DATABASE_URL: databases[name].url }, builds[name])
  console.log(machine())
  const names = Object.keys(builds)
  const first = Object.fromEntries(names.map((name) => [name, []]))
  for (let i = 0; i < rounds; i++) {
    // Alternating order; each first import (of a source of its own) on a warm page cache.
    for (const name of i % 2 === 0 ? names : [...names].reverse()) {
      warm(dir)
      first[name].push(await run(name, `compare-${i}`))
    }
  }
  const noChange = Object.fromEntries(names.map((name) => [name, []]))
  for (let i = 0; i < rounds; i++)
    for (const name of names) noChange[name].push((await run(name, `compare-${rounds - 1}`)).seconds)
  const seconds = (runs, field) => median(runs.map((r) => r[field]))
  const list = (xs) => xs.map((x) => x.toFixed(2)).join(", ")
  for (const name of names) {
    const f = first[name]
    console.log(
      `${name.padEnd(14)} first import median ${seconds(f, "seconds").toFixed(2)} s (${list(f.map((r) => r.seconds))}; CPU: tidemark ${seconds(f, "cpuSeconds").toFixed(2)} s, server ${seconds(f, "serverCpuSeconds").toFixed(2)} s), no-change median ${median(noChange[name]).toFixed(2)} s (${list(noChange[name])})`
    )
  }
  const [before, after] = names
  const faster = first[after].filter((r, i) => r.seconds < first[before][i].seconds).length
  console.log(
    `ratio this checkout / ${before}: first import ${(seconds(first[after], "seconds") / seconds(first[before], "seconds")).toFixed(2)}× (faster in ${faster} of ${rounds} rounds), no-change ${(median(noChange[after]) / median(noChange[before])).toFixed(2)}×`
  )
  for (const db of Object.values(databases)) await db.stop()
} finally {
  execFileSync("git", ["-C", root, "worktree", "remove", "--force", worktree])
}
