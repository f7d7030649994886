/**
 * The per-source counts `tidemark status` and `tidemark sources` read instead
 * of a count(*): kept by the writes, they must agree with the rows after every
 * kind of change (import, update, delete, tail, reconcile, re-presence,
 * --mirror), and migration 0009 fills them once from the rows already stored.
 * No timing here: the speed is measured by scripts/bench/status.mjs.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe as effectDescribe, expect as effectExpect, it as effectIt } from "@effect/vitest"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { DirectDb } from "../src/db/Database.js"
import * as Migrations from "../src/db/Migrations.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as J from "./support/jsonl.js"
import * as TestDatabase from "./support/TestDatabase.js"

/** Each source's kept counts beside the rows they count. */
const countsOf = (url: string) =>
  Folder.query<{ id: string; documents: string; real_documents: string; entries: string; real_entries: string }>(
    url,
    `SELECT s.id, s.documents, (SELECT count(*) FROM tidemark.documents d WHERE d.source_id = s.id) AS real_documents,
            s.entries, (SELECT count(*) FROM tidemark.entries e WHERE e.source_id = s.id AND e.present) AS real_entries
       FROM tidemark.sources s ORDER BY s.id`
  )

describe("kept counts (real CLI, real PostgreSQL)", () => {
  let url: string
  const env = () => ({ DATABASE_URL: url })
  const run = async (...args: Array<string>) => {
    const result = await Cli.run(args, env())
    expect(result.code, result.stderr).toBe(0)
    return result
  }
  const statusOf = async (id: string) =>
    (JSON.parse((await run("status", id, "--json")).stdout) as Array<Record<string, any>>)[0]!
  /** The kept counts of `id` agree with its rows, and are `documents` / `entries`. */
  const expectCounts = async (id: string, expected: { documents?: number; entries?: number }) => {
    const row = (await countsOf(url)).find((r) => r.id === id)!
    expect(Number(row.documents)).toBe(Number(row.real_documents))
    expect(Number(row.entries)).toBe(Number(row.real_entries))
    if (expected.documents !== undefined) expect(Number(row.documents)).toBe(expected.documents)
    if (expected.entries !== undefined) expect(Number(row.entries)).toBe(expected.entries)
  }

  beforeAll(async () => {
    url = await TestDatabase.createDatabase("status_fast")
    await run("migrate")
  })
  afterAll(() => TestDatabase.dropDatabase(url))

  it("documents: a first import, changed, deleted and new files, a rejected file; status shows the kept count", async () => {
    const root = Folder.makeFolder({ ...Folder.notes(60), "bad.md": "---\n: [broken\n---\n" })
    await run("sync", root)
    await expectCounts(root, { documents: 60 })
    // 5 changed (updates: no change in count), 3 deleted, 2 new: through the upsert path.
    Folder.writeFiles(
      root,
      Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`d${i}/note-${i}.md`, `# changed ${i}\n`]))
    )
    for (const i of [10, 11, 12]) fs.rmSync(path.join(root, `d${i % 20}/note-${i}.md`))
    Folder.writeFiles(root, { "new/one.md": "# one\n", "new/two.md": "# two\n" })
    await run("sync", root)
    await expectCounts(root, { documents: 59 })
    expect(await statusOf(root)).toMatchObject({ documents: 59 })
    // A second run changes nothing.
    await run("sync", root)
    await expectCounts(root, { documents: 59 })
  })

  it("a kept count gone wrong (nothing counted, items stored) does not pass for an empty source", async () => {
    const root = Folder.makeFolder(Folder.notes(30))
    await run("sync", root)
    await Folder.query(url, "UPDATE tidemark.sources SET documents = 0 WHERE id = $1", [root])
    fs.rmSync(path.join(root, "d1/note-1.md"))
    Folder.writeFiles(root, { "d2/note-2.md": "# changed\n" })
    const summary = JSON.parse((await run("sync", root, "--json")).stdout)
    expect(summary).toMatchObject({ imported: 1, deleted: 1 })
    const stored = await Folder.query<{ key: string; content: string }>(
      url,
      "SELECT key, content FROM tidemark.documents WHERE source_id = $1",
      [root]
    )
    expect(stored.map((r) => r.key)).not.toContain("d1/note-1.md")
    expect(stored.find((r) => r.key === "d2/note-2.md")?.content).toBe("# changed\n")
    expect(stored).toHaveLength(29)
  })

  it("entries: first import, a tail, a rewrite that drops entries, a deleted file under --mirror", async () => {
    const root = Folder.makeFolder()
    const a = path.join(root, "a.jsonl")
    const b = path.join(root, "b.jsonl")
    J.write(a, J.lines(Array.from({ length: 300 }, (_, i) => ({ role: "user", n: i }))))
    J.write(b, J.lines(Array.from({ length: 20 }, (_, i) => ({ role: "user", b: i }))))
    await run("sync", root, "--jsonl")
    await expectCounts(root, { entries: 320 })
    J.append(
      a,
      J.lines([
        { role: "user", n: 300 },
        { role: "assistant", n: 301 }
      ])
    )
    J.settle(a)
    await run("sync", root, "--jsonl")
    await expectCounts(root, { entries: 322 })
    // Rewritten (its first line kept): 100 entries in the middle gone from the file (not present, kept).
    const kept = [...Array.from({ length: 50 }, (_, i) => i), ...Array.from({ length: 152 }, (_, i) => i + 150)]
    J.write(a, J.lines(kept.map((n) => ({ role: n === 301 ? "assistant" : "user", n }))))
    await run("sync", root, "--jsonl", "--allow-mass-change")
    await expectCounts(root, { entries: 222 })
    fs.rmSync(b)
    await run("sync", root, "--jsonl", "--mirror", "--allow-mass-change")
    await expectCounts(root, { entries: 202 })
    expect((await statusOf(root))["jsonl"]).toMatchObject({ entries: 202 })
  })

  it("entries with --id-field: dropped, present again, written again, new", async () => {
    const root = Folder.makeFolder()
    const file = path.join(root, "ids.jsonl")
    const entry = (id: string, text: string) => ({ uuid: id, role: "user", text })
    J.write(file, J.lines([entry("a", "1"), entry("b", "2"), entry("c", "3")]))
    await run("sync", root, "--jsonl", "--id-field", "uuid")
    await expectCounts(root, { entries: 3 })
    J.write(file, J.lines([entry("c", "3"), entry("a", "1"), entry("a", "1 again"), entry("d", "4")]))
    await run("sync", root, "--jsonl", "--id-field", "uuid")
    await expectCounts(root, { entries: 3 }) // a, c, d present; b not
    J.write(file, J.lines([entry("b", "2"), entry("c", "3"), entry("a", "1"), entry("d", "4"), entry("e", "5")]))
    await run("sync", root, "--jsonl", "--id-field", "uuid")
    await expectCounts(root, { entries: 5 })
  })
})

/** A copy of the shipped migrations before `id`. */
const migrationsBefore = (id: number) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-migrations-"))
  for (const file of fs.readdirSync(Migrations.defaultMigrationsDir)) {
    if (Number(file.slice(0, 4)) < id)
      fs.copyFileSync(path.join(Migrations.defaultMigrationsDir, file), path.join(dir, file))
  }
  return dir
}

effectDescribe("migration 0009", () => {
  effectIt.scoped("fills the counts once from the rows already stored", () =>
    Effect.gen(function* () {
      yield* Migrations.migrate(migrationsBefore(9))
      const { sql } = yield* DirectDb
      yield* sql`INSERT INTO tidemark.sources (id, kind, root) VALUES ('docs', 'dir', '/d'), ('logs', 'jsonl', '/l'), ('none', 'dir', '/n')`
      yield* sql`
        INSERT INTO tidemark.documents (source_id, key, version, size, content)
        SELECT 'docs', 'k' || i, 'v', 1, 'x' FROM generate_series(1, 1234) AS i`
      yield* sql`INSERT INTO tidemark.jsonl_files (source_id, path) VALUES ('logs', 'a.jsonl')`
      yield* sql`
        INSERT INTO tidemark.entries (source_id, stream, identity, position, byte_offset, kind, entry, line_hash, present)
        SELECT 'logs', 1, '#' || i, i, i, 'message', '{}', 'h', i % 4 <> 0 FROM generate_series(1, 100) AS i`
      const applied = yield* Migrations.migrate(migrationsBefore(10))
      effectExpect(applied.map(Migrations.migrationName)).toEqual(["0009_source_counts"])
      const rows = yield* sql<{ id: string; documents: string; entries: string }>`
        SELECT id, documents, entries FROM tidemark.sources ORDER BY id`
      effectExpect(rows.map((r) => [r.id, Number(r.documents), Number(r.entries)])).toEqual([
        ["docs", 1234, 0],
        ["logs", 0, 75],
        ["none", 0, 0]
      ])
    }).pipe(Effect.provide(TestDatabase.layer("counts_fill")))
  )
})
