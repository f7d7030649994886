import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, Layer, Option } from "effect"
import { MainDb } from "../src/db/Database.js"
import * as Migrations from "../src/db/Migrations.js"
import * as MemorySourceRegistry from "../src/fleet/MemorySourceRegistry.js"
import * as PgSourceRegistry from "../src/fleet/PgSourceRegistry.js"
import { SourceRegistry } from "../src/fleet/SourceRegistry.js"
import * as SourceSpec from "../src/fleet/SourceSpec.js"
import * as TestDatabase from "./support/TestDatabase.js"

const spec = (location: string, extra: Partial<SourceSpec.SourceSpec> = {}): SourceSpec.SourceSpec => ({
  kind: "dir",
  location,
  include: [],
  exclude: ["drafts/**"],
  maxSizeMb: 10,
  concurrency: 4,
  allowMassChange: false,
  ...extra
})

type Case = (name: string, body: () => Effect.Effect<void, unknown, SourceRegistry>) => void

/** What every registry does, run on both; `test` runs a case on a registry that starts empty. */
const contract = (test: Case) => {
  test("records, reads back, lists by name and forgets a source", () =>
    Effect.gen(function* () {
      const registry = yield* SourceRegistry
      yield* registry.add({ name: "notes", spec: spec("/srv/notes"), schedule: "*/5 * * * *" })
      yield* registry.add({
        name: "app-logs",
        spec: spec("/srv/logs", { kind: "jsonl", idField: "uuid", mirror: true }),
        schedule: null
      })
      const notes = Option.getOrThrow(yield* registry.get("notes"))
      expect(notes.spec).toEqual(spec("/srv/notes"))
      expect(notes.schedule).toBe("*/5 * * * *")
      expect((yield* registry.list).map((s) => [s.name, s.spec.kind, s.spec.idField ?? null])).toEqual([
        ["app-logs", "jsonl", "uuid"],
        ["notes", "dir", null]
      ])
      expect(yield* registry.remove("notes")).toBe(true)
      expect(yield* registry.remove("notes")).toBe(false)
      expect(Option.isNone(yield* registry.get("notes"))).toBe(true)
      expect((yield* registry.list).map((s) => s.name)).toEqual(["app-logs"])
    }))

  test("refuses a second source of the same name unless told to replace it", () =>
    Effect.gen(function* () {
      const registry = yield* SourceRegistry
      yield* registry.add({ name: "repo", spec: spec("https://example.com/a.git", { kind: "git" }), schedule: null })
      const again = yield* Effect.either(
        registry.add({ name: "repo", spec: spec("/elsewhere"), schedule: "* * * * *" })
      )
      expect(Either.isLeft(again) && again.left._tag).toBe("SourceExists")
      expect(Option.getOrThrow(yield* registry.get("repo")).spec.location).toBe("https://example.com/a.git")
      yield* registry.add(
        { name: "repo", spec: spec("https://example.com/b.git", { kind: "git", ref: "main" }), schedule: "0 * * * *" },
        { replace: true }
      )
      const replaced = Option.getOrThrow(yield* registry.get("repo"))
      expect([replaced.spec.location, replaced.spec.ref, replaced.schedule]).toEqual([
        "https://example.com/b.git",
        "main",
        "0 * * * *"
      ])
    }))
}

describe("source registry in memory", () => {
  contract((name, body) => it.effect(name, () => Effect.provide(body(), MemorySourceRegistry.layer)))
})

layer(
  PgSourceRegistry.layer.pipe(
    Layer.provideMerge(Layer.effectDiscard(Effect.orDie(Migrations.migrate()))),
    Layer.provideMerge(TestDatabase.layer("source_registry"))
  ),
  { excludeTestServices: true }
)("source registry in PostgreSQL", (it) => {
  describe("contract", () =>
    contract((name, body) =>
      it.effect(name, () =>
        // Each case leaves the registry empty for the next.
        Effect.ensuring(
          body(),
          Effect.flatMap(MainDb, ({ sql }) => Effect.orDie(sql`DELETE FROM tidemark.fleet_sources`))
        )
      )
    ))

  it.effect("a stored spec that no longer decodes names its source", () =>
    Effect.gen(function* () {
      const { sql } = yield* MainDb
      yield* sql`INSERT INTO tidemark.fleet_sources (name, kind, location, spec) VALUES ('odd', 'dir', '/x', '{"kind":"dir"}')`
      const read = yield* Effect.either((yield* SourceRegistry).get("odd"))
      expect(Either.isLeft(read) && read.left._tag).toBe("UnreadableSpec")
      expect(Either.isLeft(read) && read.left.message).toMatch(
        /^the recorded options of source odd cannot be read: .*location/s
      )
      yield* sql`DELETE FROM tidemark.fleet_sources`
    })
  )
})

describe("--every as a cron expression", () => {
  const cron = (minutes: number) => Either.getOrElse(SourceSpec.cronOfEvery(minutes), (reason) => `error: ${reason}`)
  it("takes intervals that divide an hour or a day, and says why it refuses the others", () => {
    expect([1, 5, 15, 30, 60, 120, 360, 1440].map(cron)).toEqual([
      "* * * * *",
      "*/5 * * * *",
      "*/15 * * * *",
      "*/30 * * * *",
      "0 * * * *",
      "0 */2 * * *",
      "0 */6 * * *",
      "0 0 * * *"
    ])
    expect(cron(7)).toMatch(/^error: --every 7m does not divide an hour/)
    expect(cron(90)).toMatch(/^error: --every 90m: above an hour, use whole hours/)
    expect(cron(300)).toMatch(/^error: --every 5h does not divide a day/)
    expect(cron(0)).toMatch(/^error: --every takes whole minutes/)
  })
})

describe("a source's location", () => {
  it("is an absolute path, or a URL for git only", () => {
    expect(SourceSpec.normalizeLocation("dir", "notes", "/home/a")).toEqual(Either.right("/home/a/notes"))
    expect(SourceSpec.normalizeLocation("git", "https://example.com/r.git", "/x")).toEqual(
      Either.right("https://example.com/r.git")
    )
    expect(SourceSpec.normalizeLocation("git", "git@example.com:team/r.git", "/x")).toEqual(
      Either.right("git@example.com:team/r.git")
    )
    expect(Either.isLeft(SourceSpec.normalizeLocation("dir", "https://example.com/r.git", "/x"))).toBe(true)
    expect(Either.isLeft(SourceSpec.normalizeLocation("git", "ftp://example.com/r.git", "/x"))).toBe(true)
  })
})
