#!/usr/bin/env node
// The JSONL source, three figures, one run:
//
// 1. Full import of FILES files of ENTRIES entries (~100 bytes each: ~1 GB by default)
//    against its floor measured in the same run: a program of its own that reads every
//    file, splits the lines, JSON.parses each, hashes it and COPYs the same rows (stream,
//    position, offset, kind, role, entry, hash) into a table of the same shape.
// 2. Tail sync: APPENDED entries appended to every file, then a sync: bytes read against
//    bytes appended (goal: at most appended + 4 KiB per file), and its time against a
//    no-change sync of the same folder.
// 3. The flood case at scale: one file of FLOOD entries, 30% of them identical, compacted
//    (a summary replaces the first fifth, the rest re-appended) and grown: reconcile time,
//    and duplicates (goal 0).
//
//   node scripts/bench/jsonl.mjs [FILES=1000] [ENTRIES=10000] [APPENDED=10] [FLOOD=100000]
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { database, machine, root, runCli, scratchTmpdir, serverCpuSeconds, queryOnce } from "./lib.mjs"

const [files = 1000, entries = 10000, appended = 10, flood = 100000] = process.argv.slice(2).map(Number)
console.log(`${machine()}; node scripts/bench/jsonl.mjs ${files} ${entries} ${appended} ${flood}`)
const scratch = scratchTmpdir("bench-jsonl")
const db = await database()
const env = { DATABASE_URL: db.url }
const query = (text, values = []) => queryOnce(db.url, text, values)
const past = new Date(Date.UTC(2025, 0, 1))
const entry = (f, n) =>
  JSON.stringify({
    role: n % 3 === 0 ? "assistant" : "user",
    file: f,
    n,
    text: `entry ${n} of file ${f}: some words of a conversation`.padEnd(48, ".")
  })

try {
  await runCli(["migrate"], env)
  const dir = path.join(scratch.dir, "logs")
  fs.mkdirSync(dir)
  let bytes = 0
  for (let f = 0; f < files; f++) {
    const lines = Array.from({ length: entries }, (_, n) => `${entry(f, n)}\n`).join("")
    bytes += Buffer.byteLength(lines)
    const file = path.join(dir, `s${String(f).padStart(4, "0")}.jsonl`)
    fs.writeFileSync(file, lines)
    fs.utimesSync(file, past, past)
  }
  console.log(`corpus: ${files} files × ${entries} entries, ${(bytes / 2 ** 20).toFixed(0)} MiB`)

  // 1. First import, against the floor (floor first, then tidemark, then the floor again: the median of two).
  await query(`CREATE TABLE IF NOT EXISTS bench_entries (stream bigint, position bigint, byte_offset bigint, kind text,
                 role text, entry jsonb, line_hash text, PRIMARY KEY (stream, position))`)
  const floor = async () => {
    await query("TRUNCATE bench_entries")
    const started = performance.now()
    const serverBefore = serverCpuSeconds()
    await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(root, "scripts", "bench", "jsonl-floor.mjs"), db.url, dir], {
        stdio: ["ignore", "inherit", "inherit"]
      })
      child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`floor exited ${code}`))))
    })
    floorServer.push(serverCpuSeconds() - serverBefore)
    return (performance.now() - started) / 1000
  }
  const floorServer = []
  const floorBefore = await floor()
  const first = await runCli(["sync", dir, "--jsonl", "--json", "--source", "bench-jsonl"], env)
  const floorAfter = await floor()
  const floorSeconds = (floorBefore + floorAfter) / 2
  const imported = JSON.parse(first.stdout).imported
  console.log(
    `full import: ${imported} entries in ${first.seconds.toFixed(1)} s (${(bytes / 2 ** 20 / first.seconds).toFixed(0)} MiB/s, peak ${first.peakMiB.toFixed(0)} MiB, CPU ${first.cpuSeconds.toFixed(1)} s + server ${first.serverCpuSeconds.toFixed(1)} s); floor ${floorBefore.toFixed(1)} s / ${floorAfter.toFixed(1)} s (server CPU ${floorServer.map((x) => x.toFixed(1)).join(" / ")} s); ratio ${(first.seconds / floorSeconds).toFixed(2)}× (goal ≤ 1.5×)`
  )

  // 2. Tail sync against a no-change sync.
  const unchanged = await runCli(["sync", dir, "--jsonl", "--json", "--source", "bench-jsonl"], env)
  let appendedBytes = 0
  for (let f = 0; f < files; f++) {
    const lines = Array.from({ length: appended }, (_, n) => `${entry(f, entries + n)}\n`).join("")
    appendedBytes += Buffer.byteLength(lines)
    fs.appendFileSync(path.join(dir, `s${String(f).padStart(4, "0")}.jsonl`), lines)
  }
  const tail = await runCli(["sync", dir, "--jsonl", "--json", "--source", "bench-jsonl"], env)
  const tailSummary = JSON.parse(tail.stdout)
  const unchangedAgain = await runCli(["sync", dir, "--jsonl", "--json", "--source", "bench-jsonl"], env)
  const budget = appendedBytes + 4096 * files
  console.log(
    `tail sync: ${tailSummary.imported} entries (${tailSummary.paths.tail} files by their tail) in ${tail.seconds.toFixed(2)} s; read ${tailSummary.bytesRead} bytes for ${appendedBytes} appended (budget ${budget}: ${tailSummary.bytesRead <= budget ? "met" : "MISSED"}); no-change sync ${unchanged.seconds.toFixed(2)} s / ${unchangedAgain.seconds.toFixed(2)} s (read ${JSON.parse(unchanged.stdout).bytesRead} bytes); tail / no-change ${(tail.seconds / unchanged.seconds).toFixed(2)}×`
  )

  // 3. The flood case at scale.
  const floodDir = path.join(scratch.dir, "flood")
  fs.mkdirSync(floodDir)
  const floodFile = path.join(floodDir, "session.jsonl")
  const empty = JSON.stringify({ role: "assistant", content: "" })
  const original = Array.from({ length: flood }, (_, n) => (n % 10 < 3 ? empty : entry(0, n)))
  fs.writeFileSync(floodFile, original.map((l) => `${l}\n`).join(""))
  const floodFirst = await runCli(["sync", floodDir, "--jsonl", "--json", "--source", "bench-flood"], env)
  const compacted = [
    JSON.stringify({ type: "summary", text: "the first fifth, summarized" }),
    ...original.slice(flood / 5),
    ...Array.from({ length: 100 }, (_, n) => (n % 2 === 0 ? empty : entry(1, n)))
  ]
  fs.writeFileSync(floodFile, compacted.map((l) => `${l}\n`).join(""))
  const reconcile = await runCli(["sync", floodDir, "--jsonl", "--json", "--source", "bench-flood"], env)
  const summary = JSON.parse(reconcile.stdout)
  const [{ present, absent }] = await query(
    `SELECT count(*) FILTER (WHERE present)::int AS present, count(*) FILTER (WHERE NOT present)::int AS absent
       FROM tidemark.entries WHERE source_id = 'bench-flood'`
  )
  const duplicates = present - compacted.length
  console.log(
    `flood: ${flood} entries (30% identical) imported in ${floodFirst.seconds.toFixed(1)} s; compacted to ${compacted.length} and grown: reconcile in ${reconcile.seconds.toFixed(2)} s, imported ${summary.imported}, marked not present ${absent} (expected ${flood / 5}), duplicates ${duplicates} (goal 0)`
  )
} finally {
  await db.stop()
  scratch.remove()
}
