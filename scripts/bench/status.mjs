#!/usr/bin/env node
// `tidemark status` at 1,000,000 documents: its own work, against a floor in
// the same run. The documents are inserted straight by SQL (generate_series,
// ~300 bytes each, one source), plus a JSONL source of 100,000 entries, and
// the kept counts set as a sync would have left them. Then, median of N each:
//
//   in process, on a warm pool: what `tidemark status` does (its queries and its
//   text) against the floor `SELECT 1`, and the count(*) per source that
//   status did before migration 0009;
//   whole CLI processes, status and its floor `tidemark lock list` (start,
//   connect, migrations check, one small query) run alternately, wall clock
//   and CPU seconds of the process (user + system).
//
// "own work" = status − floor. On a busy machine the in-process figures are the
// ones to read: a whole process's wall clock swings by hundreds of ms there.
//
//   node scripts/bench/status.mjs [runs] [documents]
import { spawnSync } from "node:child_process"
import { Effect, Layer } from "effect"
import pg from "pg"
import { Database } from "../../dist/index.js"
import { statuses } from "../../dist/status/StatusQuery.js"
import { asText } from "../../dist/cli/status/render.js"
import { cli, database, machine, median, scratchTmpdir, settingsLayer } from "./lib.mjs"

const runs = Number(process.argv[2] ?? 9)
const documents = Number(process.argv[3] ?? 1_000_000)
const entries = 100_000

const tmp = scratchTmpdir("status")
const db = await database()
const env = { ...process.env, DATABASE_URL: db.url, TIDEMARK_MAINTENANCE: "off", TIDEMARK_HOME: tmp.dir }

const time = (args) => {
  const started = performance.now()
  const result = spawnSync("/usr/bin/time", ["-f", "%U %S", process.execPath, cli, ...args], { env, encoding: "utf8" })
  const ms = performance.now() - started
  if (result.status !== 0) throw new Error(`tidemark ${args.join(" ")} failed: ${result.stderr}`)
  const [user, system] = result.stderr.trim().split("\n").at(-1).split(" ").map(Number)
  return { ms, cpuMs: (user + system) * 1000, stdout: result.stdout }
}
const line = (label, samples, unit = "ms") =>
  console.log(
    `${label.padEnd(48)} median ${median(samples).toFixed(1).padStart(7)} ${unit}   (min ${Math.min(...samples).toFixed(1)}, max ${Math.max(...samples).toFixed(1)}, n=${samples.length})`
  )
/** Whole processes of each command, run in turns (so drift of the machine's load hits both alike). */
const alternate = (commands) => {
  for (const args of Object.values(commands)) time(args) // warms the compile cache and the server
  const out = Object.fromEntries(Object.keys(commands).map((k) => [k, { ms: [], cpuMs: [] }]))
  for (let i = 0; i < runs; i++) {
    for (const [label, args] of Object.entries(commands)) {
      const t = time(args)
      out[label].ms.push(t.ms)
      out[label].cpuMs.push(t.cpuMs)
    }
  }
  for (const [label, t] of Object.entries(out)) {
    line(`${label} (wall)`, t.ms)
    line(`${label} (CPU, user+system)`, t.cpuMs)
  }
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { ms: median(t.ms), cpuMs: median(t.cpuMs) }]))
}
/** `effect` run `runs` times on one warm pool (after one unmeasured run): milliseconds each. */
const inProcess = (effect) =>
  Effect.runPromise(
    Effect.gen(function* () {
      yield* effect
      const samples = []
      for (let i = 0; i < runs; i++) {
        const started = performance.now()
        yield* effect
        samples.push(performance.now() - started)
      }
      return samples
    }).pipe(Effect.scoped, Effect.provide(Database.layer.pipe(Layer.provide(settingsLayer(db.url)))))
  )
const statusWork = Effect.map(statuses(), asText)
const selectOne = Effect.flatMap(Database.MainDb, ({ sql }) => sql`SELECT 1`)
const oldCounts = Effect.flatMap(
  Database.MainDb,
  ({ sql }) => sql`SELECT s.id, (SELECT count(*) FROM tidemark.documents d WHERE d.source_id = s.id) AS documents,
                          (SELECT count(*) FROM tidemark.entries e WHERE e.source_id = s.id AND e.present) AS entries
                     FROM tidemark.sources s`
)

const client = new pg.Client({ connectionString: db.url })
try {
  console.log(machine())
  time(["migrate"])
  await client.connect()
  const empty = await inProcess(statusWork)
  line("in process: status work, no sources", empty)

  const loadStarted = performance.now()
  await client.query(
    `INSERT INTO tidemark.sources (id, kind, root) VALUES ('big', 'dir', '/bench/big'), ('logs', 'jsonl', '/bench/logs')`
  )
  await client.query(
    `INSERT INTO tidemark.documents (source_id, key, version, source_version, size, content, title)
     SELECT 'big', 'd' || (i % 100) || '/note-' || i || '.md', md5(i::text), md5(i::text), 300,
            repeat('Line of note ' || i || ', words words words. ', 7), 'Note ' || i
       FROM generate_series(1, $1) AS i`,
    [documents]
  )
  await client.query(`INSERT INTO tidemark.jsonl_files (source_id, path) VALUES ('logs', 'a.jsonl')`)
  const [{ stream }] = (await client.query(`SELECT stream FROM tidemark.jsonl_files WHERE source_id = 'logs'`)).rows
  await client.query(
    `INSERT INTO tidemark.entries (source_id, stream, identity, position, byte_offset, kind, role, entry, line_hash)
     SELECT 'logs', $1, '#' || i, i, i * 80, 'message', 'user', jsonb_build_object('role', 'user', 'n', i), md5(i::text)
       FROM generate_series(1, $2) AS i`,
    [stream, entries]
  )
  // What the writes would have kept (a sync moves the counts in each batch's transaction).
  await client.query(
    `UPDATE tidemark.sources s SET documents = (SELECT count(*) FROM tidemark.documents d WHERE d.source_id = s.id),
            entries = (SELECT count(*) FROM tidemark.entries e WHERE e.source_id = s.id AND e.present)`
  )
  await client.query("VACUUM ANALYZE tidemark.documents")
  await client.query("VACUUM ANALYZE tidemark.entries")
  console.log(
    `loaded ${documents} documents and ${entries} entries in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`
  )
  const shown = JSON.parse(time(["status", "--json"]).stdout)
  const big = shown.find((s) => s.id === "big")
  if (big?.documents !== documents) throw new Error(`status shows ${big?.documents} documents, not ${documents}`)

  const work = await inProcess(statusWork)
  const floor = await inProcess(selectOne)
  const old = await inProcess(oldCounts)
  line(`in process: status work, ${documents} documents`, work)
  line("in process: floor (SELECT 1)", floor)
  line("in process: the count(*) per source of before", old)
  const cli = alternate({
    "tidemark lock list (floor)": ["lock", "list"],
    "tidemark status": ["status"],
    "tidemark status big": ["status", "big"],
    "tidemark sources": ["sources"]
  })
  const floorCli = cli["tidemark lock list (floor)"]
  console.log(
    `own work at ${documents} documents: in process ${(median(work) - median(floor)).toFixed(1)} ms ` +
      `(${median(empty).toFixed(1)} ms with no sources; the count(*) alone was ${median(old).toFixed(1)} ms); ` +
      `whole CLI, status − lock list: wall ${(cli["tidemark status"].ms - floorCli.ms).toFixed(0)} ms, ` +
      `CPU ${(cli["tidemark status"].cpuMs - floorCli.cpuMs).toFixed(0)} ms; ` +
      `sources − lock list: wall ${(cli["tidemark sources"].ms - floorCli.ms).toFixed(0)} ms`
  )
} finally {
  await client.end().catch(() => {})
  await db.stop()
  tmp.remove()
}
