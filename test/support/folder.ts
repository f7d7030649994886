/** Folders made by the tests, and what the database should hold for them. */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import pg from "pg"

/** Old enough that no file counts as modified within the mtime tick of a sync. */
const past = new Date(Date.UTC(2025, 0, 1))

export const writeFiles = (root: string, files: Record<string, string | Buffer>) => {
  for (const [key, content] of Object.entries(files)) {
    const file = path.join(root, ...key.split("/"))
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, content)
    fs.utimesSync(file, past, past)
  }
}

export const makeFolder = (files: Record<string, string | Buffer> = {}) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-folder-"))
  fs.chmodSync(root, 0o755)
  writeFiles(root, files)
  return root
}

/** `count` Markdown notes of about 2 KB, spread over folders. */
export const notes = (count: number, variant = ""): Record<string, string> =>
  Object.fromEntries(
    Array.from({ length: count }, (_, i) => [
      `d${i % 20}/note-${i}.md`,
      `---\ntitle: Note ${i}${variant}\ntags: [t${i % 7}]\n---\n# Note ${i}\n\n${`Line ${i} of the note body. `.repeat(70)}\n`
    ])
  )

/** The key a test holds (see support/block.ts) in the folders of `held`. */
export const heldKey = "m/block.md"

/**
 * A folder the sync lists as a/…, then m/block.md, then z/… (`each` files on either
 * side): a test holds the key m/block.md, and the sync waits at that batch, with
 * the ones before it written, until the test lets go — however fast or slow the
 * machine is.
 */
export const heldFiles = (each: number): Record<string, string> => ({
  ...Object.fromEntries(
    Array.from({ length: each }, (_, i) => [`a/note-${String(i).padStart(5, "0")}.md`, `# a ${i}\n`])
  ),
  [heldKey]: "# held\n",
  ...Object.fromEntries(
    Array.from({ length: each }, (_, i) => [`z/note-${String(i).padStart(5, "0")}.md`, `# z ${i}\n`])
  )
})

export const held = (each: number, extra: Record<string, string | Buffer> = {}) =>
  makeFolder({ ...heldFiles(each), ...extra })

export const sha256 = (content: string | Buffer) => createHash("sha256").update(content).digest("hex")

/** key → content hash of every regular file under `root`, as the folder source sees it. */
export const expectedDocuments = (root: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (dir: string, prefix: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        if (entry.name !== ".git" && entry.name !== "node_modules")
          walk(path.join(dir, entry.name), `${prefix}${entry.name}/`)
      } else if (entry.isFile()) out[`${prefix}${entry.name}`] = sha256(fs.readFileSync(path.join(dir, entry.name)))
    }
  }
  walk(root, "")
  return out
}

export const storedDocuments = async (url: string, sourceId: string): Promise<Record<string, string>> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const rows = await client.query<{ key: string; version: string }>(
      "SELECT key, version FROM tidemark.documents WHERE source_id = $1 ORDER BY key",
      [sourceId]
    )
    return Object.fromEntries(rows.rows.map((r) => [r.key, r.version]))
  } finally {
    await client.end()
  }
}

export const query = async <R extends pg.QueryResultRow>(url: string, text: string, values: Array<unknown> = []) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<R>(text, values)).rows
  } finally {
    await client.end()
  }
}
