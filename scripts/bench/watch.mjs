#!/usr/bin/env node
// Watch mode: from a saved file to its row in the database, for trees of 1,000 and N files.
//
// A watch runs (`tidemark sync DIR --watch`); 30 times, a note is saved (new, or an edit of an
// existing one, alternating) and the time until its row has the new content is taken, polling
// the database every 2 ms. The peer, in the same run: the same change synced by a one-shot
// `tidemark sync DIR` (a whole process: start, connect, list, compare, write).
//
//   node scripts/bench/watch.mjs [N=10000]
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import pg from "pg"
import { cli, corpus, database, machine, median, runCli, scratchTmpdir } from "./lib.mjs"

const big = Number(process.argv[2] ?? 10000)
console.log(`${machine()}; node scripts/bench/watch.mjs ${big}`)
const scratch = scratchTmpdir("bench-watch")
const db = await database()
const env = { ...process.env, DATABASE_URL: db.url, TIDEMARK_MAINTENANCE: "off" }
const client = new pg.Client({ connectionString: db.url })
await client.connect()
const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const contentOf = async (source, key) =>
  (await client.query("SELECT content FROM tidemark.documents WHERE source_id = $1 AND key = $2", [source, key]))
    .rows[0]?.content

try {
  for (const n of [1000, big]) {
    const dir = corpus(path.join(scratch.dir, `corpus-${n}`), n)
    const source = `bench-watch-${n}`
    const watch = spawn(process.execPath, [cli, "sync", dir, "--source", source, "--watch", "--json"], { env })
    let out = ""
    watch.stdout.on("data", (d) => (out += d))
    while (!out.includes('"round":1,')) {
      if (watch.exitCode !== null) throw new Error(`the watch ended: ${out}`)
      await sleep(20)
    }
    const latencies = []
    for (let i = 0; i < 30; i++) {
      const key = i % 2 === 0 ? `d0/saved-${i}.md` : `d${i % 100}/note-${i}.md`
      const content = `# saved ${i}\n\n${"A line of the saved note. ".repeat(40)}\n`
      const started = performance.now()
      fs.writeFileSync(path.join(dir, key), content)
      while ((await contentOf(source, key)) !== content) await sleep(2)
      latencies.push(performance.now() - started)
      await sleep(300)
    }
    watch.kill("SIGTERM")
    await new Promise((resolve) => watch.once("close", resolve))

    // The peer: one change, one whole CLI sync (5 times).
    const oneShot = []
    for (let i = 0; i < 5; i++) {
      fs.writeFileSync(path.join(dir, `d1/peer-${i}.md`), `# peer ${i}\n`)
      oneShot.push((await runCli(["sync", dir, "--source", source, "--json"], env)).seconds * 1000)
    }
    const p50 = percentile(latencies, 0.5)
    console.log(
      `${n} files: saved file → its row p50 ${p50.toFixed(0)} ms, p95 ${percentile(latencies, 0.95).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms (30 saves); ` +
        `one-shot tidemark sync of one change: median ${median(oneShot).toFixed(0)} ms; watch / one-shot ${(p50 / median(oneShot)).toFixed(2)}×`
    )
  }
} finally {
  await client.end()
  await db.stop()
  scratch.remove()
}
