#!/usr/bin/env node
// The floor of a folder import, as a program of its own: list the folder, read
// and sha256 every file, COPY the rows (key, hash, size, content) into an
// existing empty table. What any importer must at least do; `sync.mjs` times
// it from start to exit, as it times the CLI. Prints the seconds it took after
// connecting (the in-process floor of earlier reports).
//
//   node scripts/bench/floor.mjs DATABASE_URL DIR TABLE
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import pg from "pg"
import copyStreams from "pg-copy-streams"

const [url, dir, table] = process.argv.slice(2)
const escape = (s) => s.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r")

const client = new pg.Client({ connectionString: url })
await client.connect()
const started = performance.now()
const keys = []
const walk = (d, prefix) => {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    if (e.isDirectory()) walk(path.join(d, e.name), `${prefix}${e.name}/`)
    else if (e.isFile() && !e.name.startsWith(".")) keys.push(`${prefix}${e.name}`)
  }
}
walk(dir, "")
async function* rows() {
  for (const key of keys) {
    const bytes = fs.readFileSync(path.join(dir, key))
    const hash = createHash("sha256").update(bytes).digest("hex")
    yield `${escape(key)}\t${hash}\t${bytes.length}\t${escape(bytes.toString("utf8"))}\n`
  }
}
await pipeline(
  Readable.from(rows()),
  client.query(copyStreams.from(`COPY ${table} (key, version, size, content) FROM STDIN`))
)
const seconds = (performance.now() - started) / 1000
await client.end()
console.log(JSON.stringify({ rows: keys.length, seconds }))
