// 8. Bad input: a folder with every kind of bad or odd file we know of, plus files
// deleted and rewritten while the sync runs. Each is an item error with a clear
// reason, or imported exactly (SQL in names and contents verbatim), or — for links,
// pipes and the like — left alone; nothing else is lost, and a second sync leaves
// the database equal to the folder.
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import {
  compare,
  documentCount,
  folderHashes,
  notesFolder,
  query,
  runTidemark,
  scratchDir,
  sleep,
  tidemark
} from "./lib.mjs"

export const name = "bad-input"

const sha = (content) => createHash("sha256").update(content).digest("hex")
const sqlName = "x'); DROP TABLE tidemark.documents; --.md"
const sqlContent = "'; DELETE FROM tidemark.documents WHERE true; -- $$ \\x00 E'\\\\'\n"

/** [kind, key, content or setup, expectation]: error (reason contains), imported, or absent. */
const cases = (root) => [
  [
    "binary file",
    "image.png",
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]),
    { error: "binary" }
  ],
  ["invalid UTF-8", "latin1.txt", Buffer.from("caf\xe9 cr\xe8me\n", "latin1"), { error: "not valid UTF-8" }],
  ["empty file", "empty.md", "", { imported: true }],
  ["oversized", "huge.md", "x".repeat(2 * 1024 * 1024), { error: "larger than the 1 MiB limit" }],
  ["broken YAML frontmatter", "broken.md", "---\ntitle: [unclosed\n---\nbody\n", { error: "broken frontmatter" }],
  ["unclosed frontmatter", "unclosed.md", "---\ntitle: never closed\nbody\n", { error: "never closed" }],
  [
    "non-object frontmatter (a list)",
    "list.md",
    "---\n- a\n- b\n---\n# List\n",
    { imported: true, frontmatter: ["a", "b"] }
  ],
  ["non-string title", "year.md", "---\ntitle: 2024\n---\nbody\n", { imported: true, title: "2024" }],
  ["NUL byte in text", "nul.md", "# Text\n\0more\n", { error: "binary" }],
  ["UTF-8 byte order mark", "bom.md", "\ufeff# BOM\n", { imported: true }],
  ["CRLF line ends", "crlf.md", "---\r\ntitle: Windows\r\n---\r\nbody\r\n", { imported: true, title: "Windows" }],
  ["name with a newline", "new\nline.md", "# newline\n", { imported: true }],
  ["name with quotes", `it's "quoted".md`, "# quotes\n", { imported: true }],
  ["name with backslashes", "back\\slash\\.md", "# backslash\n", { imported: true }],
  ["name with emoji", "notes 🎉🚀.md", "# emoji\n", { imported: true }],
  ["very long name", `${"long-".repeat(49)}x.md`, "# long\n", { imported: true }],
  [
    "deep nesting",
    `${Array.from({ length: 40 }, (_, i) => `n${i}`).join("/")}/deep.md`,
    "# deep\n",
    { imported: true }
  ],
  ["SQL in the name", sqlName, "# sql name\n", { imported: true }],
  ["SQL in the content", "sql-content.md", sqlContent, { imported: true, content: sqlContent }],
  [
    "unreadable file",
    "unreadable.md",
    () => {
      fs.writeFileSync(path.join(root, "unreadable.md"), "# secret\n")
      fs.chmodSync(path.join(root, "unreadable.md"), 0o000)
    },
    { error: "permission denied" }
  ],
  [
    "unreadable folder",
    "locked/",
    () => {
      fs.mkdirSync(path.join(root, "locked"))
      fs.writeFileSync(path.join(root, "locked", "inside.md"), "# inside\n")
      fs.chmodSync(path.join(root, "locked"), 0o000)
    },
    { error: "folder not readable" }
  ],
  [
    "symlink loop",
    "loop-a",
    () => {
      fs.symlinkSync("loop-b", path.join(root, "loop-a"))
      fs.symlinkSync("loop-a", path.join(root, "loop-b"))
    },
    { absent: true }
  ],
  [
    "symlink out of the root",
    "passwd.md",
    () => fs.symlinkSync("/etc/passwd", path.join(root, "passwd.md")),
    { absent: true }
  ],
  ["symlink to a folder outside", "etc", () => fs.symlinkSync("/etc", path.join(root, "etc")), { absent: true }],
  ["named pipe", "pipe.md", () => execFileSync("mkfifo", [path.join(root, "pipe.md")]), { absent: true }]
]

const ordinaryUser = () => {
  if (process.getuid?.() !== 0) return {}
  const id = (flag) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim())
  return { uid: id("-u"), gid: id("-g") }
}

export const run = async ({ url, short }) => {
  const root = scratchDir("bad-input")
  const all = cases(root)
  for (const [, key, content] of all) {
    if (typeof content === "function") content()
    else {
      fs.mkdirSync(path.dirname(path.join(root, key)), { recursive: true })
      fs.writeFileSync(path.join(root, key), content)
    }
  }
  const source = `chaos-bad-input-${Date.now()}`
  const env = { DATABASE_URL: url }
  // As root every file is readable: the CLI runs as the postgres user instead.
  const asUser = ordinaryUser()
  const first = await runTidemark(["sync", root, "--source", source, "--json", "--max-size-mb", "1"], env, asUser)
  if (first.code !== 0) throw new Error(`sync exited ${first.code}: ${first.stderr.slice(-400)}`)
  const docs = new Map(
    (
      await query(
        url,
        "SELECT key, version, content, frontmatter, title FROM tidemark.documents WHERE source_id = $1",
        [source]
      )
    ).map((r) => [r.key, r])
  )
  const errors = new Map(
    (await query(url, "SELECT key, error FROM tidemark.item_errors WHERE source_id = $1", [source])).map((r) => [
      r.key,
      r.error
    ])
  )
  const wrong = []
  for (const [kind, key, content, expect] of all) {
    const doc = docs.get(key)
    if (expect.error !== undefined && !(errors.get(key) ?? "").includes(expect.error)) {
      wrong.push(
        `${kind}: expected error "${expect.error}", got ${JSON.stringify(errors.get(key) ?? (doc ? "imported" : "nothing"))}`
      )
    }
    if (expect.imported) {
      const bytes = typeof content === "string" ? Buffer.from(content) : content
      if (doc === undefined || doc.version !== sha(bytes)) wrong.push(`${kind}: not imported exactly`)
      if (expect.content !== undefined && doc?.content !== expect.content) wrong.push(`${kind}: content not verbatim`)
      if (expect.title !== undefined && doc?.title !== expect.title) wrong.push(`${kind}: title ${doc?.title}`)
      if (expect.frontmatter !== undefined && JSON.stringify(doc?.frontmatter) !== JSON.stringify(expect.frontmatter)) {
        wrong.push(`${kind}: frontmatter ${JSON.stringify(doc?.frontmatter)}`)
      }
    }
    if (expect.absent && (doc !== undefined || [...docs.keys()].some((k) => k.startsWith(`${key}/`))))
      wrong.push(`${kind}: followed`)
  }
  const passwd = fs.readFileSync("/etc/passwd", "utf8")
  if ([...docs.values()].some((d) => d.content === passwd)) wrong.push("a file outside the root was read")
  const [{ exists }] = await query(url, "SELECT to_regclass('tidemark.documents') IS NOT NULL AS exists")
  if (!exists) wrong.push("the documents table is gone")

  // Files deleted and rewritten while a sync runs.
  const busy = notesFolder("bad-input-during", short ? 4000 : 10000)
  const busySource = `chaos-during-${Date.now()}`
  const expectedBefore = folderHashes(busy)
  const keys = [...expectedBefore.keys()].sort()
  const { child, finished } = tidemark(["sync", busy, "--source", busySource, "--json", "--concurrency", "1"], env)
  while ((await documentCount(url, busySource)) === 0 && child.exitCode === null) await sleep(10)
  // The tail of the key order is read last: change it now.
  const tail = keys.slice(-200)
  for (const key of tail.slice(0, 100)) fs.rmSync(path.join(busy, key))
  for (const key of tail.slice(100)) fs.writeFileSync(path.join(busy, key), `# rewritten during the sync ${key}\n`)
  const during = await finished
  if (during.code !== 0) wrong.push(`sync with files changing exited ${during.code}`)
  const [{ n: stale }] = await query(
    url,
    "SELECT count(*)::int AS n FROM tidemark.documents d WHERE source_id = $1 AND NOT (key = ANY($2::text[]))",
    [busySource, keys]
  )
  if (stale !== 0) wrong.push(`${stale} documents not from the folder`)
  const again = await runTidemark(["sync", busy, "--source", busySource, "--json"], env)
  if (again.code !== 0) wrong.push(`second sync exited ${again.code}`)
  const check = await compare(url, busySource, folderHashes(busy))

  return {
    runs: 3,
    faults: all.length + 200,
    lost: check.lost,
    duplicates: check.duplicates,
    equal: check.equal && wrong.length === 0,
    ok: check.equal && wrong.length === 0,
    detail:
      wrong.length === 0
        ? `${all.length} kinds of bad input each handled as expected; 100 files deleted and 100 rewritten mid-sync converged`
        : wrong.slice(0, 4).join("; ")
  }
}
