#!/usr/bin/env node
// The floor of a JSONL import, as a program of its own: for every file, read it, split
// the lines, JSON.parse each (the role decides message or metadata), sha256 it, and COPY
// the same rows tidemark stores (stream, line number, offset, kind, role, entry, hash)
// into bench_entries. What any importer must at least do; serial, one COPY.
//
//   node scripts/bench/jsonl-floor.mjs DATABASE_URL DIR
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import pg from "pg"
import copyStreams from "pg-copy-streams"

const [url, dir] = process.argv.slice(2)
const escape = (s) => s.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r")

const client = new pg.Client({ connectionString: url })
await client.connect()
const names = fs
  .readdirSync(dir)
  .filter((n) => n.endsWith(".jsonl"))
  .sort()
async function* rows() {
  for (const [stream, name] of names.entries()) {
    const bytes = fs.readFileSync(path.join(dir, name))
    const out = []
    let at = 0
    for (let number = 0; ; number++) {
      const newline = bytes.indexOf(10, at)
      if (newline < 0) break
      const line = bytes.subarray(at, newline)
      const text = line.toString("utf8")
      const value = JSON.parse(text)
      const role = typeof value.role === "string" ? value.role : null
      const hash = createHash("sha256").update(line).digest("hex")
      out.push(
        `${stream}\t${number}\t${at}\t${role === null ? "metadata" : "message"}\t${role ?? "\\N"}\t${escape(text)}\t${hash}\n`
      )
      at = newline + 1
    }
    // One chunk per file: the stream's per-chunk cost is not the floor's to pay.
    yield out.join("")
  }
}
await pipeline(
  Readable.from(rows()),
  client.query(
    copyStreams.from("COPY bench_entries (stream, position, byte_offset, kind, role, entry, line_hash) FROM STDIN")
  )
)
await client.end()
