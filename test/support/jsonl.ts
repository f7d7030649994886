/** JSONL files made by the tests, and what the database should hold for them. */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { isJsonlName } from "../../src/source/jsonl/JsonlFiles.js"
import { query } from "./folder.js"

const hash = (line: string) => createHash("sha256").update(line).digest("hex")

export const line = (value: unknown) => `${JSON.stringify(value)}\n`
export const lines = (values: ReadonlyArray<unknown>) => values.map(line).join("")

/** Old enough that the sync trusts size and mtime (a file changed within 2 s of its reading is checked again). */
const past = new Date(Date.UTC(2025, 0, 1))

export const write = (file: string, content: string) => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, content)
  fs.utimesSync(file, past, past)
}

/** Sets a file's mtime back, as if it had not changed for a while. */
export const settle = (file: string) => fs.utimesSync(file, past, past)
export const append = (file: string, content: string) => fs.appendFileSync(file, content)

const isValid = (text: string) => {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

/** path → hashes of the valid complete lines of every JSONL file under `root`, in file order. */
export const fileEntries = (root: string): Record<string, Array<string>> => {
  const out: Record<string, Array<string>> = {}
  const walk = (dir: string, prefix: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const key = `${prefix}${entry.name}`
      if (entry.isDirectory()) walk(path.join(dir, entry.name), `${key}/`)
      else if (entry.isFile() && isJsonlName(entry.name)) {
        const text = fs.readFileSync(path.join(dir, entry.name), "utf8")
        const complete = text.slice(0, text.lastIndexOf("\n") + 1)
        out[key] = complete
          .split("\n")
          .slice(0, -1)
          .filter(isValid)
          .map((l) => hash(l))
      }
    }
  }
  walk(root, "")
  return out
}

/** path → hashes of the entries stored present in each file that is not gone, in file order. */
export const storedEntries = async (url: string, sourceId: string): Promise<Record<string, Array<string>>> => {
  const rows = await query<{ path: string; line_hash: string }>(
    url,
    `SELECT f.path, e.line_hash FROM tidemark.entries e JOIN tidemark.jsonl_files f USING (source_id, stream)
      WHERE e.source_id = $1 AND e.present AND NOT f.gone ORDER BY f.path, e.position`,
    [sourceId]
  )
  const out: Record<string, Array<string>> = {}
  for (const row of rows) (out[row.path] ??= []).push(row.line_hash)
  return out
}

/** Every entry row of the source, present or not, gone files included. */
export const allEntries = (url: string, sourceId: string) =>
  query<{
    path: string
    gone: boolean
    identity: string
    position: string
    present: boolean
    kind: string
    role: string | null
    entry: unknown
  }>(
    url,
    `SELECT f.path, f.gone, e.identity, e.position, e.present, e.kind, e.role, e.entry
       FROM tidemark.entries e JOIN tidemark.jsonl_files f USING (source_id, stream)
      WHERE e.source_id = $1 ORDER BY f.path, e.position`,
    [sourceId]
  )
