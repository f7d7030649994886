#!/usr/bin/env node
// A no-change `tidemark sync` against `git status --porcelain` on the same tree, in one run.
//
// The corpus of sync.mjs (N notes of ~2 KB) is copied once into a repository of its own and
// committed there (git's index then knows every file, as tidemark's stored versions do);
// tidemark imports the same copy once. Then, alternating, `rounds` times each:
//   git status --porcelain      (what git does to find nothing changed: stat every file
//                                against its index)
//   tidemark sync DIR           (no change: list, lstat, compare against the stored versions)
// and, to say where tidemark's time goes, the parts of a start that do no planning:
//   node -e 0                   (node itself)
//   tidemark --version          (node and the bundle loaded)
//   tidemark sources            (start-up, connect, the migration check, one query)
// and, in this process (connected once), the no-change sync's phases from its spans, and the
// walk with one lstat per file alone.
//
//   node scripts/bench/vs-git-status.mjs [N=100000] [rounds=5]
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Layer, ManagedRuntime, Stream, Tracer } from "effect"
import { DirSource, SyncProgram, Tidemark } from "../../dist/index.js"
import { cli, corpus, database, machine, median, runCli, settingsLayer, warm } from "./lib.mjs"

const n = Number(process.argv[2] ?? 100000)
const rounds = Number(process.argv[3] ?? 5)
console.log(`${machine()}; node scripts/bench/vs-git-status.mjs ${n} ${rounds}`)

const source = corpus(`/tmp/tidemark-bench-corpus-${n}`, n)
const tree = `/tmp/tidemark-bench-gitstatus-${n}`
const git = (...args) => {
  const run = spawnSync("git", ["-C", tree, "-c", "gc.auto=0", ...args], { encoding: "utf8", maxBuffer: 1 << 28 })
  if (run.status !== 0) throw new Error(`git ${args.join(" ")}: ${run.stderr}`)
  return run.stdout
}
if (!fs.existsSync(path.join(tree, ".git", "bench-done"))) {
  fs.rmSync(tree, { recursive: true, force: true })
  fs.cpSync(source, tree, { recursive: true, preserveTimestamps: true })
  git("init", "-q")
  git("add", "-A")
  git("-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-qm", "corpus")
  fs.writeFileSync(path.join(tree, ".git", "bench-done"), "")
}
// The repository's own files are not notes: tidemark is pointed at a tree without them.
const notes = `${tree}-notes`
if (!fs.existsSync(`${notes}.bench-done`)) {
  fs.rmSync(notes, { recursive: true, force: true })
  fs.cpSync(source, notes, { recursive: true, preserveTimestamps: true })
  fs.writeFileSync(`${notes}.bench-done`, "")
}
warm(tree)
warm(notes)

const timed = (command, args) =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.on("close", (code) =>
      code === 0
        ? resolve({ seconds: (performance.now() - started) / 1000, out })
        : reject(new Error(`${command} exited ${code}`))
    )
  })

const db = await database()
const env = { DATABASE_URL: db.url }
try {
  const first = await runCli(["sync", notes, "--source", "gitstatus", "--json"], env)
  console.log(`first import: ${first.seconds.toFixed(2)} s (${JSON.parse(first.stdout).imported} documents)`)
  const times = { git: [], sync: [], node: [], version: [], sources: [] }
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? ["git", "sync"] : ["sync", "git"]
    for (const what of order) {
      if (what === "git") {
        const run = await timed("git", ["-C", tree, "status", "--porcelain"])
        if (run.out.trim() !== "") throw new Error(`git status found changes: ${run.out.slice(0, 200)}`)
        times.git.push(run.seconds)
      } else {
        const run = await runCli(["sync", notes, "--source", "gitstatus", "--json"], env)
        const summary = JSON.parse(run.stdout)
        if (summary.imported !== 0 || summary.deleted !== 0)
          throw new Error(`the no-change sync changed something: ${run.stdout}`)
        times.sync.push(run.seconds)
      }
    }
    times.node.push((await timed(process.execPath, ["-e", "0"])).seconds)
    times.version.push((await timed(process.execPath, [cli, "--version"])).seconds)
    times.sources.push((await runCli(["sources", "--json"], env)).seconds)
  }
  // In process: the phases of the no-change sync (its spans), and the walk alone.
  const spans = []
  const recording = Effect.map(Effect.tracer, (native) =>
    Tracer.make({
      span: (...args) => {
        const span = native.span(...args)
        spans.push(span)
        return span
      },
      context: native.context
    })
  )
  const runtime = ManagedRuntime.make(Tidemark.layerPg.pipe(Layer.provide(settingsLayer(db.url))))
  const phases = {}
  const walks = []
  try {
    for (let round = 0; round < rounds; round++) {
      spans.length = 0
      await runtime.runPromise(
        Effect.flatMap(recording, (tracer) =>
          Effect.scoped(
            Effect.flatMap(DirSource.make(notes), (source) => SyncProgram.run({ sourceId: "gitstatus", source }))
          ).pipe(Effect.withTracer(tracer))
        )
      )
      for (const span of spans) {
        if (span.status._tag !== "Ended") continue
        ;(phases[span.name] ??= []).push(Number(span.status.endTime - span.status.startTime) / 1e9)
      }
      const started = performance.now()
      let listed = 0
      await runtime.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const source = yield* DirSource.make(notes)
            const listing = yield* source.plan({}, null)
            yield* Stream.runForEach(listing.items, (item) =>
              Effect.sync(() => (listed += item.version.length > 0 ? 1 : 0))
            )
          })
        )
      )
      walks.push((performance.now() - started) / 1000)
    }
  } finally {
    await runtime.dispose()
  }
  const f = (xs) => `median ${median(xs).toFixed(3)} s (${xs.map((x) => x.toFixed(3)).join(", ")})`
  console.log(`git status --porcelain: ${f(times.git)}`)
  console.log(`tidemark sync, no change: ${f(times.sync)}`)
  console.log(`ratio: ${(median(times.sync) / median(times.git)).toFixed(2)}× (goal ≤ 1.5×)`)
  console.log(`where tidemark's time goes (medians):`)
  console.log(`  node -e 0:          ${median(times.node).toFixed(3)} s`)
  console.log(`  tidemark --version: ${median(times.version).toFixed(3)} s (node + the bundle)`)
  console.log(`  tidemark sources:   ${median(times.sources).toFixed(3)} s (+ connect, migration check, a query)`)
  console.log(
    `  the sync's own work: ${(median(times.sync) - median(times.sources)).toFixed(3)} s (list, lstat, compare, the op)`
  )
  console.log(`in this process, connected once (medians of ${rounds}):`)
  for (const [name, xs] of Object.entries(phases)
    .sort((a, b) => median(b[1]) - median(a[1]))
    .slice(0, 8))
    console.log(`  span ${name}: ${median(xs).toFixed(3)} s`)
  console.log(`  the walk with an lstat per file, alone: ${median(walks).toFixed(3)} s`)
} finally {
  await db.stop()
}
