// 10. The JSONL source under SIGKILL: 50 files grow the whole time (two writer processes,
// 25 files each, some lines written in two parts a moment apart), and syncs are killed at random moments.
// After the writers stop and a last sync runs, the stored entries must equal the files'
// entries exactly, file by file and in order: none missing, none twice.
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { between, fileEntries, query, root, runTidemark, scratchDir, sleep, storedEntries, tidemark } from "./lib.mjs"

export const name = "jsonl-sigkill"

export const run = async ({ url, short }) => {
  const kills = short ? 10 : 100
  const dir = scratchDir("jsonl")
  const files = Array.from({ length: 50 }, (_, i) => path.join(dir, `f${String(i).padStart(2, "0")}.jsonl`))
  for (const [i, file] of files.entries()) {
    fs.writeFileSync(
      file,
      Array.from({ length: 100 }, (_, n) => `${JSON.stringify({ role: "user", file: i, n })}\n`).join("")
    )
  }
  const appender = path.join(root, "test", "fixtures", "jsonl-appender.mjs")
  // Each writer has files of its own: two processes appending to one file interleave their lines.
  const writers = ["w1", "w2"].map((id, w) =>
    spawn(process.execPath, [appender, id, ...files.filter((_, i) => i % 2 === w)], { stdio: "ignore" })
  )
  const source = `chaos-jsonl-${Date.now()}`
  const env = { DATABASE_URL: url }
  let killed = 0
  let runs = 0
  try {
    while (killed < kills) {
      runs++
      const { child, finished } = tidemark(["sync", dir, "--jsonl", "--source", source, "--json"], env)
      await sleep(between(300, 1500))
      if (child.exitCode === null) {
        child.kill("SIGKILL")
        killed++
      }
      const exit = await finished
      if (exit.code !== 0 && exit.signal !== "SIGKILL")
        throw new Error(`a sync exited ${exit.code}: ${exit.stderr.slice(-400)}`)
    }
  } finally {
    for (const writer of writers) writer.kill("SIGTERM")
    await Promise.all(writers.map((writer) => new Promise((resolve) => writer.once("close", resolve))))
  }
  runs++
  const last = await runTidemark(["sync", dir, "--jsonl", "--source", source, "--json"], env)
  if (last.code !== 0) throw new Error(`the last sync exited ${last.code}: ${last.stderr.slice(-400)}`)
  const expected = fileEntries(dir)
  const stored = await storedEntries(url, source)
  let lost = 0
  let duplicates = 0
  let entries = 0
  for (const [file, hashes] of expected) {
    entries += hashes.length
    const have = stored.get(file) ?? []
    const counts = new Map()
    for (const h of have) counts.set(h, (counts.get(h) ?? 0) + 1)
    for (const h of hashes) {
      const n = counts.get(h) ?? 0
      if (n === 0) lost++
      else counts.set(h, n - 1)
    }
    for (const n of counts.values()) duplicates += n
  }
  const inOrder = [...expected].every(
    ([file, hashes]) => JSON.stringify(stored.get(file) ?? []) === JSON.stringify(hashes)
  )
  const equal = lost === 0 && duplicates === 0 && inOrder && stored.size === expected.size
  return {
    runs,
    faults: killed,
    lost,
    duplicates,
    equal,
    ok: equal,
    detail: `50 files growing throughout (2 writers, some lines written in two parts); ${entries} entries at the end, each stored once, in file order`
  }
}
