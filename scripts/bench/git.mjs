#!/usr/bin/env node
// Git source, in one run on one database:
//   - a repository of N files (the folder benchmark's corpus, committed): first sync;
//   - one commit touching 10 files: the incremental sync (blobs read, wall time),
//     against a no-change sync of the same tree as a folder;
//   - blob read throughput: one `git cat-file --batch` process vs one `git show` per blob.
//
//   node scripts/bench/git.mjs [files=100000] [blobs=2000]
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { CatFile } from "../../dist/index.js"
import { corpus, database, machine, median, runCli } from "./lib.mjs"

const files = Number(process.argv[2] ?? 100000)
const blobCount = Number(process.argv[3] ?? 2000)
const dir = corpus(`/tmp/tidemark-bench-corpus-${files}`, files)
const repo = `/tmp/tidemark-bench-repo-${files}`
// No automatic gc: a background `gc --auto` after the corpus commit would run beside the measurements.
const git = (...args) =>
  execFileSync("git", ["-C", repo, "-c", "gc.auto=0", ...args], { encoding: "utf8", maxBuffer: 1 << 30 })

console.log(machine())
if (!fs.existsSync(path.join(repo, ".git"))) {
  const started = performance.now()
  fs.cpSync(dir, repo, { recursive: true })
  git("init", "-q", "-b", "main")
  git("-c", "user.email=bench@tidemark.invalid", "-c", "user.name=bench", "add", "-A")
  git("-c", "user.email=bench@tidemark.invalid", "-c", "user.name=bench", "commit", "-q", "-m", "corpus")
  console.log(`repository of ${files} files made in ${((performance.now() - started) / 1000).toFixed(1)} s`)
}
const db = await database()
const env = { DATABASE_URL: db.url }
const run = async (args) => {
  const result = await runCli([...args, "--json"], env)
  return { ...result, summary: JSON.parse(result.stdout) }
}

const source = `bench-git-${Date.now()}`
const first = await run(["sync", repo, "--source", source])
console.log(
  `first sync:       ${first.seconds.toFixed(2)} s, read ${first.summary.read}, peak ${first.peakMiB.toFixed(0)} MiB`
)

const incremental = []
let read = 0
for (let round = 0; round < 5; round++) {
  for (let i = 0; i < 10; i++) {
    const file = path.join(repo, `d${i}`, `note-${i}.md`)
    fs.appendFileSync(file, `edit ${Date.now()}-${round}\n`)
  }
  git("-c", "user.email=bench@tidemark.invalid", "-c", "user.name=bench", "commit", "-q", "-am", `touch 10 (${round})`)
  const result = await run(["sync", repo, "--source", source])
  incremental.push(result.seconds)
  read = result.summary.read
}

const folderSource = `bench-git-folder-${Date.now()}`
console.log(
  `incremental sync (10 files), whole CLI run: median ${median(incremental).toFixed(2)} s of ${incremental.map((s) => s.toFixed(2)).join(", ")}; blobs read ${read}`
)

// The same tree as a plain folder: first import, then a no-change sync.
await run(["sync", dir, "--source", folderSource])
const noChange = []
for (let i = 0; i < 3; i++) noChange.push((await run(["sync", dir, "--source", folderSource])).seconds)
console.log(`no-change folder sync (same tree): median ${median(noChange).toFixed(2)} s`)
console.log(`ratio incremental git / no-change folder: ${(median(incremental) / median(noChange)).toFixed(2)}×`)

// Blob throughput.
const oids = git("ls-tree", "-r", "HEAD")
  .trim()
  .split("\n")
  .slice(0, blobCount)
  .map((line) => line.split(/\s+/)[2])
const batchStarted = performance.now()
await Effect.runPromise(
  Effect.scoped(
    Effect.flatMap(CatFile.make(repo), (catFile) =>
      Effect.forEach(oids, (oid) => catFile.read(oid), { concurrency: 4 })
    )
  )
)
const batchSeconds = (performance.now() - batchStarted) / 1000
const showStarted = performance.now()
for (const oid of oids) spawnSync("git", ["-C", repo, "show", oid], { maxBuffer: 1 << 26 })
const showSeconds = (performance.now() - showStarted) / 1000
console.log(
  `blob reads: cat-file --batch ${(oids.length / batchSeconds).toFixed(0)} blobs/s, git show per blob ${(oids.length / showSeconds).toFixed(0)} blobs/s: ${(showSeconds / batchSeconds).toFixed(1)}× faster (${oids.length} blobs)`
)
await db.stop()
