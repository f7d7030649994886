import { describe, expect, it, layer } from "@effect/vitest"
import { Either, Effect, Layer, Ref } from "effect"
import yaml from "js-yaml"
import * as Backfills from "../src/db/Backfills.js"
import { MainDb } from "../src/db/Database.js"
import * as Migrations from "../src/db/Migrations.js"
import { parseDocument, titleOf } from "../src/sink/Document.js"
import { titleBackfill } from "../src/sink/titleBackfill.js"
import * as TestDatabase from "./support/TestDatabase.js"

/** A step that records a row of work in `bf_work` and counts its invocations. */
const countingStep = (name: string, version: number) =>
  Effect.map(Ref.make(0), (invocations) => ({
    invocations,
    step: {
      name,
      version,
      run: Effect.flatMap(MainDb, ({ sql }) =>
        Effect.zipRight(
          Ref.update(invocations, (n) => n + 1),
          sql`INSERT INTO bf_work (step, version) VALUES (${name}, ${version})`
        )
      )
    } satisfies Backfills.BackfillStep
  }))

/** Runs the pending backfills of a registry holding exactly `steps`. */
const startWith = (...steps: ReadonlyArray<Backfills.BackfillStep>) =>
  Backfills.runPending().pipe(
    Effect.provide(Backfills.register(...steps).pipe(Layer.provideMerge(Backfills.Backfills.Default)))
  )

const setUp = Effect.gen(function* () {
  yield* Migrations.migrate()
  const { sql } = yield* MainDb
  yield* sql`CREATE TABLE IF NOT EXISTS bf_work (step text NOT NULL, version integer NOT NULL)`
  return sql
})

const workRows = (name: string) =>
  Effect.flatMap(MainDb, ({ sql }) =>
    Effect.map(sql<{ n: string }>`SELECT count(*) AS n FROM bf_work WHERE step = ${name}`, (rows) => Number(rows[0]!.n))
  )
const markers = (name: string) =>
  Effect.flatMap(MainDb, ({ sql }) =>
    Effect.map(
      sql<{ version: number }>`SELECT version FROM tidemark.backfill_state WHERE step = ${name} ORDER BY version`,
      (rows) => rows.map((r) => r.version)
    )
  )

layer(TestDatabase.layer("backfills"), { excludeTestServices: true })("versioned backfills (PostgreSQL)", (it) => {
  it.effect("the first start runs every step with its marker; the next start runs none", () =>
    Effect.gen(function* () {
      yield* setUp
      const a = yield* countingStep("first-a", 1)
      const b = yield* countingStep("first-b", 1)
      const first = yield* startWith(a.step, b.step)
      expect(first.map((o) => o._tag)).toEqual(["Completed", "Completed"])
      expect([yield* markers("first-a"), yield* markers("first-b")]).toEqual([[1], [1]])

      const second = yield* startWith(a.step, b.step)
      expect(second.map((o) => o._tag)).toEqual(["AlreadyDone", "AlreadyDone"])
      expect([yield* Ref.get(a.invocations), yield* Ref.get(b.invocations)]).toEqual([1, 1])
      expect([yield* workRows("first-a"), yield* workRows("first-b")]).toEqual([1, 1])
    })
  )

  it.effect("a failure at the marker write keeps neither work nor marker; the next start completes the step", () =>
    Effect.gen(function* () {
      const sql = yield* setUp
      yield* sql.unsafe(`
        CREATE OR REPLACE FUNCTION bf_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'marker write refused for %', NEW.step; END $$;
        CREATE TRIGGER bf_refuse BEFORE INSERT ON tidemark.backfill_state
          FOR EACH ROW WHEN (NEW.step = 'failing') EXECUTE FUNCTION bf_refuse();`)
      const failing = yield* countingStep("failing", 1)
      const after = yield* countingStep("after-failing", 1)
      const refused = yield* startWith(failing.step, after.step)
      expect(refused[0]).toMatchObject({ _tag: "Failed", step: "failing", reason: "marker write refused for failing" })
      // The failure stops nothing else.
      expect(refused[1]).toMatchObject({ _tag: "Completed", step: "after-failing" })
      expect(yield* Ref.get(failing.invocations)).toBe(1)
      expect([yield* workRows("failing"), (yield* markers("failing")).length]).toEqual([0, 0])

      yield* sql`DROP TRIGGER bf_refuse ON tidemark.backfill_state`
      const retried = yield* startWith(failing.step, after.step)
      expect(retried.map((o) => o._tag)).toEqual(["Completed", "AlreadyDone"])
      expect([yield* workRows("failing"), yield* markers("failing")]).toEqual([1, [1]])
    })
  )

  it.effect("a version bump reruns exactly that step", () =>
    Effect.gen(function* () {
      yield* setUp
      const d1 = yield* countingStep("bump-d", 1)
      const e1 = yield* countingStep("bump-e", 1)
      yield* startWith(d1.step, e1.step)
      const d2 = yield* countingStep("bump-d", 2)
      const bumped = yield* startWith(d2.step, e1.step)
      expect(bumped.map((o) => `${o.step} v${o.version} ${o._tag}`)).toEqual([
        "bump-d v2 Completed",
        "bump-e v1 AlreadyDone"
      ])
      expect([yield* Ref.get(d2.invocations), yield* Ref.get(e1.invocations)]).toEqual([1, 1])
      expect(yield* markers("bump-d")).toEqual([1, 2])
    })
  )

  it.effect("two starts at once: one runs the step, the other waits and skips it", () =>
    Effect.gen(function* () {
      yield* setUp
      const invocations = yield* Ref.make(0)
      const slow: Backfills.BackfillStep = {
        name: "concurrent",
        version: 1,
        run: Effect.flatMap(MainDb, ({ sql }) =>
          // Holds the step's lock long enough for the other start to queue behind it.
          Effect.zipRight(
            Ref.update(invocations, (n) => n + 1),
            sql`SELECT pg_sleep(0.3)`
          )
        )
      }
      const both = yield* Effect.all([startWith(slow), startWith(slow)], { concurrency: 2 })
      expect(both.map((outcomes) => outcomes[0]!._tag).sort()).toEqual(["AlreadyDone", "Completed"])
      expect(yield* Ref.get(invocations)).toBe(1)
    })
  )

  it.effect("the title backfill repairs titles written by algorithm version 1, and only those", () =>
    Effect.gen(function* () {
      const sql = yield* setUp
      yield* sql`INSERT INTO tidemark.sources (id, kind, root) VALUES ('titles', 'dir', '/titles')`
      const documents: Array<[key: string, content: string, v1Title: string]> = [
        ["scripts/install.sh", "#!/bin/sh\n# install the tools\napt-get install git\n", "install the tools"],
        ["notes/code.md", "```sh\n# not a title\n```\n\nReal Title\n==========\n\ntext\n", "not a title"],
        ["notes/csharp.md", "# C#\n\nnotes\n", "C"],
        ["notes/year.md", "---\ntitle: 2024\n---\nbody\n", "year"],
        ["notes/fine.md", "# Already right\n", "Already right"]
      ]
      for (const [key, content, title] of documents) {
        yield* sql`
          INSERT INTO tidemark.documents (source_id, key, version, size, content, title)
          VALUES ('titles', ${key}, ${`v-${key}`}, ${content.length}, ${content}, ${title})`
      }
      const [before] = yield* sql<{ at: Date }>`
        SELECT imported_at AS at FROM tidemark.documents WHERE key = 'notes/fine.md'`
      const outcomes = yield* startWith(titleBackfill)
      expect(outcomes).toMatchObject([{ _tag: "Completed", step: "documents.title", version: 2 }])
      const titles = Object.fromEntries(
        (yield* sql<{ key: string; title: string }>`
          SELECT key, title FROM tidemark.documents WHERE source_id = 'titles'`).map((r) => [r.key, r.title])
      )
      expect(titles).toEqual({
        "scripts/install.sh": "install",
        "notes/code.md": "Real Title",
        "notes/csharp.md": "C#",
        "notes/year.md": "2024",
        "notes/fine.md": "Already right"
      })
      // What a sync writes now is already right: the backfill and the sink agree.
      for (const [key, content] of documents) {
        const parsed = parseDocument(key, content)
        expect(parsed._tag === "Right" && parsed.right.title).toBe(titles[key])
      }
      const [after] = yield* sql<{ at: Date }>`
        SELECT imported_at AS at FROM tidemark.documents WHERE key = 'notes/fine.md'`
      expect(after!.at).toEqual(before!.at)
    })
  )
})

describe("titles (algorithm version 2)", () => {
  it("takes the first heading outside fenced code, ATX or setext, in Markdown only", () => {
    expect(titleOf("a.md", null, "~~~\n# no\n~~~\n## Yes ##\n")).toBe("Yes")
    expect(titleOf("a.md", null, "````\n```\n# no\n```\n````\nTitle\n---\n")).toBe("Title")
    expect(titleOf("a.md", null, "text only\n\n---\n")).toBe("a")
    expect(titleOf("a.md", null, "- item\n---\n")).toBe("a")
    expect(titleOf("notes.txt", null, "# heading\n")).toBe("notes")
    expect(titleOf("a.md", { title: true }, "# heading\n")).toBe("true")
    expect(titleOf("a.md", { title: ["list"] }, "# heading\n")).toBe("heading")
  })
})

/**
 * The frontmatter cut as one regular expression over the decoded text: what the
 * parser, which scans the bytes and decodes only what it reads, must agree with.
 */
const parsedByRegex = (key: string, text: string) => {
  if (!key.endsWith(".md")) return Either.right({ frontmatter: null, title: titleOf(key, null, text) })
  const block = /^---\r?\n([\s\S]*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|$)/.exec(text)
  if (block === null) {
    return /^---\r?\n/.test(text)
      ? Either.left("broken frontmatter: the block opened by --- is never closed")
      : Either.right({ frontmatter: null, title: titleOf(key, null, text) })
  }
  try {
    const frontmatter = yaml.load(block[1]!, { schema: yaml.CORE_SCHEMA }) ?? null
    return Either.right({ frontmatter, title: titleOf(key, frontmatter, text.slice(block[0].length)) })
  } catch (error) {
    return Either.left(`broken frontmatter: ${(error as Error).message.split("\n")[0]}`)
  }
}

describe("parsing UTF-8 bytes", () => {
  const texts = [
    "---\ntitle: A\n---\nbody\n",
    "---\r\ntitle: CRLF\r\n---\r\n# Heading\r\n",
    "---\ntags: [x]\n...\n\n# Dots close it\n",
    "---\n---\nnot: closed here\n---\n# After\n",
    "---\n\n---\n# Empty block\n",
    "---\ntitle: no newline at the end\n---",
    "---\ntitle: 'unclosed'\n",
    "---\ntitle: [broken\n---\n",
    "---not a block\n# Heading\n",
    "no frontmatter\n\n```\n# in code\n```\n\nSetext é\n===\n",
    "---\ntitle: ''\n---\n" + "line\n".repeat(2000) + "## Far down ✓ ##\n",
    "---\nnote: –—ü\n---x\n---  \n# Ünïcode\r\n",
    "---\r\n\r\n---\r\n# CRLF, empty block\r\n",
    "---\n\r\n---\n",
    "---\n---\n",
    "---\ntitle: x\n--- x\n---\t \n# After a tab\n",
    "---\ntitle: hrules\n" + "----------\ntext\n".repeat(50),
    ""
  ]
  it("cuts the frontmatter where a regular expression over the decoded text does", () => {
    for (const text of texts) {
      const encoded = Buffer.from(`padding${text}padding`)
      // A view into a larger buffer, as a source's reads are; the backfill parses stored strings.
      const bytes = encoded.subarray(7, encoded.length - 7)
      for (const key of ["n.md", "n.txt"]) {
        expect(parseDocument(key, bytes), text).toEqual(parsedByRegex(key, text))
        expect(parseDocument(key, text), text).toEqual(parsedByRegex(key, text))
      }
    }
    expect(parseDocument("n.md", Buffer.from(texts[10]!))).toEqual(
      Either.right({ frontmatter: { title: "" }, title: "Far down ✓" })
    )
  })
})
