#!/usr/bin/env node
// The fleet, in one run on one database (embedded unless DATABASE_URL is set):
//   overhead: N no-change syncs of small sources (20 files each) as jobs through
//     `tidemark worker`s (pg-boss), against the same syncs one after the other in
//     one process (the library, no job engine: the floor);
//   throughput: first imports of S sources of F files by 1, 2 and 3 workers:
//     sources per minute, and the database server's share of the machine's CPU.
//
//   npx node scripts/bench/fleet.mjs [overhead-sources=500] [sources=100] [files=2000]
// (pg-boss needs Node 22: run it with the project's node, `npx node` or `npm exec`.)
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { DirSource, SyncProgram, Tidemark } from "../../dist/index.js"
import { bossClient, cli, corpus, database, machine, queryOnce, settingsLayer } from "./lib.mjs"
import { spawn } from "node:child_process"

const overheadSources = Number(process.argv[2] ?? 500)
const sources = Number(process.argv[3] ?? 100)
const files = Number(process.argv[4] ?? 2000)
const db = await database()
console.log(machine())
const env = { ...process.env, DATABASE_URL: db.url, TIDEMARK_MAINTENANCE: "off" }
delete env.DIRECT_DATABASE_URL

const run = (args) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env, stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`tidemark ${args.join(" ")}: ${stderr}`))))
  })
await run(["migrate"])

const boss = await bossClient(db.url)

/** Recorded sources, written straight into the registry (setting up, not measured). */
const record = async (entries) => {
  for (let i = 0; i < entries.length; i += 500) {
    const chunk = entries.slice(i, i + 500)
    await queryOnce(
      db.url,
      `INSERT INTO tidemark.fleet_sources (name, kind, location, spec)
       SELECT n, 'dir', l, jsonb_build_object('kind', 'dir', 'location', l, 'include', '[]'::jsonb, 'exclude', '[]'::jsonb,
              'maxSizeMb', 10, 'concurrency', 4, 'allowMassChange', false)
         FROM unnest($1::text[], $2::text[]) AS s(n, l)`,
      [chunk.map((e) => e.name), chunk.map((e) => e.dir)]
    )
  }
}

const completed = async (names) =>
  (
    await queryOnce(
      db.url,
      "SELECT count(DISTINCT singleton_key)::int AS n FROM tidemark_boss.job WHERE name = 'tidemark-sync' AND state = 'completed' AND singleton_key = ANY($1::text[])",
      [names]
    )
  )[0].n

/** Sends one job per source, starts `workers` workers, and times until every job is completed. */
const throughFleet = async (names, workers, concurrency) => {
  const procs = Array.from({ length: workers }, () =>
    spawn(process.execPath, [cli, "worker", "--queues", "sync", "--concurrency", String(concurrency)], {
      env,
      stdio: ["ignore", "ignore", "pipe"]
    })
  )
  // Timed from the first job sent, with the workers already up and polling.
  await new Promise((resolve) => setTimeout(resolve, 3000))
  const cpuBefore = serverCpu()
  const started = performance.now()
  for (const name of names) await boss.send("tidemark-sync", { source: name }, { singletonKey: name })
  while ((await completed(names)) < names.length) await new Promise((resolve) => setTimeout(resolve, 100))
  const seconds = (performance.now() - started) / 1000
  const serverShare = (serverCpu() - cpuBefore) / (seconds * os.cpus().length)
  for (const p of procs) p.kill("SIGTERM")
  await Promise.all(procs.map((p) => new Promise((resolve) => p.once("close", resolve))))
  return { seconds, serverShare }
}

/** CPU seconds used so far by the database server's processes (every postgres process on the machine). */
const serverCpu = () => {
  let ticks = 0
  for (const pid of fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
      if (name !== "postgres") continue
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {}
  }
  return ticks / 100
}

// --- overhead ------------------------------------------------------------------
const small = []
const base = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-bench-fleet-"))
for (let i = 0; i < overheadSources; i++) {
  const dir = path.join(base, `small-${i}`)
  fs.mkdirSync(dir)
  for (let f = 0; f < 20; f++) fs.writeFileSync(path.join(dir, `n${f}.md`), `# note ${f} of ${i}\n`)
  small.push({ name: `small-${i}`, dir })
}
await record(small)
const layer = Tidemark.layerPg.pipe(Layer.provide(settingsLayer(db.url)))
const inProcess = () =>
  Effect.runPromise(
    Effect.forEach(small, (s) =>
      Effect.scoped(Effect.flatMap(DirSource.make(s.dir), (source) => SyncProgram.run({ sourceId: s.name, source })))
    ).pipe(Effect.provide(layer))
  )
await inProcess() // the first imports, not timed
let started = performance.now()
await inProcess()
const floor = (performance.now() - started) / 1000
const names = small.map((s) => s.name)
// Every source synced once through the fleet first (each job a no-change sync already).
await throughFleet(names, 3, 2)
await queryOnce(db.url, "DELETE FROM tidemark_boss.job WHERE name = 'tidemark-sync'")
const fleet = await throughFleet(names, 3, 2)
console.log(
  `overhead: ${overheadSources} no-change syncs of 20 files: in one process ${floor.toFixed(1)} s (${(overheadSources / floor).toFixed(0)}/s); through 3 workers × 2: ${fleet.seconds.toFixed(1)} s (${(overheadSources / fleet.seconds).toFixed(0)}/s) = ${(fleet.seconds / floor).toFixed(2)}× the floor`
)

// --- throughput ----------------------------------------------------------------
const folders = Array.from({ length: sources }, (_, i) =>
  corpus(`/tmp/tidemark-bench-fleet-corpus-${files}-${i}`, files, 1024)
)
for (const workers of [1, 2, 3]) {
  const named = folders.map((dir, i) => ({ name: `w${workers}-src-${i}`, dir }))
  await record(named)
  const { seconds, serverShare } = await throughFleet(
    named.map((s) => s.name),
    workers,
    2
  )
  console.log(
    `throughput: ${workers} worker${workers === 1 ? "" : "s"} × 2 jobs: ${sources} first imports of ${files} files in ${seconds.toFixed(1)} s = ${((sources / seconds) * 60).toFixed(1)} sources/min (${((sources * files) / seconds).toFixed(0)} files/s); the server used ${(serverShare * 100).toFixed(0)}% of the machine's CPU`
  )
}
await boss.stop({ graceful: false, close: true })
fs.rmSync(base, { recursive: true, force: true })
await db.stop()
