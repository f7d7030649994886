import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { BinaryRows, copyIn } from "../src/db/Copy.js"
import * as Database from "../src/db/Database.js"
import { MainDb } from "../src/db/Database.js"
import * as Migrations from "../src/db/Migrations.js"
import * as DocumentsSink from "../src/sink/DocumentsSink.js"
import { Sink } from "../src/sink/Sink.js"
import { type ReadItem, textOf } from "../src/source/Source.js"
import * as TestDatabase from "./support/TestDatabase.js"

const layer = DocumentsSink.layer.pipe(Layer.provideMerge(TestDatabase.layer("documents_sink")))

/** The content is a view into a larger buffer, as a source's reads are. */
const within = (content: string) => {
  const bytes = Buffer.byteLength(content)
  return Buffer.from(`<<${content}>>`).subarray(2, 2 + bytes)
}

const item = (key: string, content: string, mtime: Date | null): ReadItem => ({
  key,
  content: within(content),
  size: Buffer.byteLength(content),
  mtime,
  contentHash: `hash-of-${key}`,
  version: `version-of-${key}`
})

// Every kind of value the encoder handles: escapes a text COPY would need, multi-byte
// characters, frontmatter of every type, a NULL mtime (git), dates on both sides of 2000 and 1970.
const items: ReadonlyArray<ReadItem> = [
  item(
    "notes/tab\tand\\backslash.md",
    '---\ntitle: Ünïcödé "quoted" \\ title\ncount: 3\nratio: 0.5\nok: true\nnothing: null\nlist: [1, two, {three: 3}]\nwhen: 2024-01-02\n---\n# Heading\n\ttab\r\nline\\n\n',
    new Date(Date.UTC(2024, 4, 5, 6, 7, 8, 912))
  ),
  item("日本語/ノート.md", "# 見出し\n\n本文 🌊 with emoji\n", new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 1))),
  item("plain.txt", "no frontmatter, no heading\n", null),
  item("empty.md", "", new Date(Date.UTC(1969, 6, 20, 20, 17, 40))),
  // 8-byte fields past 32 bits: a size the source reports beyond 4 GiB, a date centuries ahead.
  { ...item("huge.txt", "cut short\n", new Date(Date.UTC(2262, 3, 11, 23, 47, 16, 854))), size: 2 ** 40 + 12_345 },
  // Two bytes per character: the encoder's size estimate falls short by megabytes, and
  // the rows run on into further buffers (sent as further CopyData messages).
  ...Array.from({ length: 400 }, (_, i) =>
    item(`long/ü-${i}.md`, `# Über ${i}\n\n${"ü".repeat(3000)}\n`, new Date(Date.UTC(2025, 0, 1, 0, 0, i)))
  )
]

const rowsOf = (sourceId: string) =>
  Effect.flatMap(
    MainDb,
    ({ sql }) => sql<Record<string, unknown>>`
      SELECT key, version, source_version, size, mtime, content, frontmatter, title, tsv
        FROM tidemark.documents WHERE source_id = ${sourceId} ORDER BY key`
  )

const addSource = (id: string) =>
  Effect.flatMap(
    MainDb,
    ({ sql }) => sql`INSERT INTO tidemark.sources (id, kind, root) VALUES (${id}, 'dir', '/nowhere')`
  )

describe("documents sink", () => {
  it.layer(layer)((it) => {
    it.effect("stores the same rows whether it copies new documents in or upserts them", () =>
      Effect.gen(function* () {
        yield* Migrations.migrate()
        const sink = yield* Sink
        yield* addSource("copied")
        yield* addSource("upserted")
        const keys = new Set(items.map((i) => i.key))
        yield* sink.write("copied", { items, unstored: keys, deletes: [] }, Effect.void)
        yield* sink.write("upserted", { items, deletes: [] }, Effect.void)
        const copied = yield* rowsOf("copied")
        expect(copied).toHaveLength(items.length)
        expect(copied).toEqual(yield* rowsOf("upserted"))
        const first = copied.find((r) => r.key === items[0]!.key)!
        expect(first.content).toBe(textOf(items[0]!))
        expect(first.mtime).toEqual(items[0]!.mtime)
        expect(first.frontmatter).toEqual({
          title: 'Ünïcödé "quoted" \\ title',
          count: 3,
          ratio: 0.5,
          ok: true,
          nothing: null,
          list: [1, "two", { three: 3 }],
          when: "2024-01-02"
        })
        expect(first.title).toBe('Ünïcödé "quoted" \\ title')
        expect(copied.find((r) => r.key === "plain.txt")).toMatchObject({ mtime: null, frontmatter: null })
        expect(copied.find((r) => r.key === "日本語/ノート.md")?.mtime).toEqual(items[1]!.mtime)
      })
    )

    it.effect("reads every stored version of a source in one COPY, in key order, whatever its id and keys", () =>
      Effect.gen(function* () {
        yield* Migrations.migrate()
        const sink = yield* Sink
        // A source id a literal in the statement must carry as it is.
        const awkward = "it's a \\ source; -- 'quoted'"
        yield* addSource(awkward)
        yield* addSource("beside it")
        yield* sink.write(awkward, { items, deletes: [] }, Effect.void)
        yield* sink.write("beside it", { items: items.slice(0, 3), deletes: [] }, Effect.void)
        const versions = yield* sink.storedVersions!(awkward)
        const stored = yield* rowsOf(awkward)
        expect([...versions.entries()]).toEqual(stored.map((row) => [row.key, row.source_version]))
        expect(versions.size).toBe(items.length)
        expect(versions.get("notes/tab\tand\\backslash.md")).toBe("version-of-notes/tab\tand\\backslash.md")
        expect((yield* sink.storedVersions!("beside it")).size).toBe(3)
        expect((yield* sink.storedVersions!("no such source")).size).toBe(0)
      })
    )

    it.effect("redoes a batch as upserts when a key it was told is not stored exists", () =>
      Effect.gen(function* () {
        const sink = yield* Sink
        yield* addSource("conflict")
        const [stale, fresh] = [item("a.md", "# old\n", null), item("b.md", "# B\n", null)]
        yield* sink.write("conflict", { items: [stale], deletes: [] }, Effect.void)
        const changed = { ...stale, content: within("# new\n"), contentHash: "new-hash" }
        const rejected = yield* sink.write(
          "conflict",
          { items: [changed, fresh], unstored: new Set(["a.md", "b.md"]), deletes: [] },
          Effect.void
        )
        expect(rejected).toEqual([])
        const rows = yield* rowsOf("conflict")
        expect(rows.map((r) => [r.key, r.content, r.version])).toEqual([
          ["a.md", "# new\n", "new-hash"],
          ["b.md", "# B\n", "hash-of-b.md"]
        ])
      })
    )

    it.effect("upserts new documents when the role may not create the staging table", () =>
      Effect.gen(function* () {
        const { sql } = yield* MainDb
        const [{ name }] = (yield* sql<{ name: string }>`SELECT current_database() AS name`) as [{ name: string }]
        const role = `tm_notemp_${name}`
        yield* sql.unsafe(`CREATE ROLE ${role} LOGIN`)
        yield* sql.unsafe(`REVOKE TEMPORARY ON DATABASE ${name} FROM PUBLIC`)
        yield* sql.unsafe(`GRANT USAGE ON SCHEMA tidemark TO ${role}`)
        yield* sql.unsafe(`GRANT ALL ON ALL TABLES IN SCHEMA tidemark TO ${role}`)
        yield* addSource("restricted")
        const url = new URL(TestDatabase.withDatabaseName(TestDatabase.adminUrl(), name))
        url.username = role
        const asRole = DocumentsSink.layer.pipe(
          Layer.provideMerge(Database.layer),
          Layer.provide(TestDatabase.settingsFor(url.toString()))
        )
        const [first, second] = [items.slice(0, 2), items.slice(2, 4)]
        yield* Effect.gen(function* () {
          const sink = yield* Sink
          for (const batch of [first, second]) {
            const unstored = new Set(batch.map((i) => i.key))
            expect(yield* sink.write("restricted", { items: batch, unstored, deletes: [] }, Effect.void)).toEqual([])
          }
        }).pipe(Effect.provide(asRole))
        const rows = yield* rowsOf("restricted")
        expect(rows.map((r) => r.key)).toEqual([...first, ...second].map((i) => i.key).sort())
        expect(rows.map((r) => r.content)).toEqual(
          [...first, ...second].sort((a, b) => (a.key < b.key ? -1 : 1)).map(textOf)
        )
      })
    )

    it.effect("refuses to COPY outside a transaction, where the lease's fence could not guard it", () =>
      Effect.gen(function* () {
        const exit = yield* Effect.exit(
          copyIn("COPY tidemark.sources (id) FROM STDIN (FORMAT binary)", new BinaryRows(0))
        )
        expect(exit._tag).toBe("Failure")
        expect(String(exit)).toContain("COPY must run inside a transaction")
      })
    )
  })
})
