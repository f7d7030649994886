/** The start-up check: one query on an up-to-date database, the full migrator otherwise. */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import * as Backfills from "../src/db/Backfills.js"
import { DirectDb } from "../src/db/Database.js"
import * as Migrations from "../src/db/Migrations.js"
import * as Readiness from "../src/db/Readiness.js"
import { migrationsDirWith } from "./support/migrationsDir.js"
import * as TestDatabase from "./support/TestDatabase.js"

const appliedIds = Effect.flatMap(DirectDb, ({ sql }) =>
  Effect.map(sql<{ id: number }>`SELECT id FROM tidemark.schema_migrations ORDER BY id`, (rows) =>
    rows.map((r) => r.id)
  )
)

/** A backfill that counts its runs. */
const countingStep = (runs: Ref.Ref<number>, version: number): Backfills.BackfillStep => ({
  name: "test.counting",
  version,
  run: Ref.update(runs, (n) => n + 1)
})

describe("start-up readiness", () => {
  it.scoped("a fresh database is migrated and its backfills run; an up-to-date one is left as it is", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const check = Readiness.ensureReady().pipe(
        Effect.provide(Backfills.register(countingStep(runs, 1)).pipe(Layer.provideMerge(Backfills.Backfills.Default)))
      )
      yield* check
      const shipped = yield* Migrations.loadMigrations()
      expect(yield* appliedIds).toEqual(shipped.map((m) => m.id))
      expect(yield* Ref.get(runs)).toBe(1)
      yield* check
      expect(yield* Ref.get(runs)).toBe(1)
      // A new version of the step is not done yet: the full path runs it.
      yield* Readiness.ensureReady().pipe(
        Effect.provide(Backfills.register(countingStep(runs, 2)).pipe(Layer.provideMerge(Backfills.Backfills.Default)))
      )
      expect(yield* Ref.get(runs)).toBe(2)
    }).pipe(Effect.provide(TestDatabase.layer("ready_fresh")))
  )

  it.scoped("up to date, no migration file is read; a new one is applied, and then an edited one is refused", () =>
    Effect.gen(function* () {
      const registry = Backfills.Backfills.Default
      const dir = migrationsDirWith({ "9001_extra.sql": "CREATE TABLE tidemark.extra (id int);" })
      yield* Readiness.ensureReady(dir).pipe(Effect.provide(registry))
      // Edited after it was applied: the start-up check does not read it (the names match)...
      fs.writeFileSync(path.join(dir, "9001_extra.sql"), "CREATE TABLE tidemark.extra (id bigint);")
      yield* Readiness.ensureReady(dir).pipe(Effect.provide(registry))
      // ...the migrator does, and so does the next start that has something to apply.
      expect((yield* Effect.flip(Migrations.migrate(dir))).message).toContain("changed after it was applied")
      fs.writeFileSync(path.join(dir, "9002_more.sql"), "CREATE TABLE tidemark.more (id int);")
      const refused = yield* Effect.flip(Readiness.ensureReady(dir).pipe(Effect.provide(registry)))
      expect(refused).toBeInstanceOf(Migrations.MigrationError)
      expect((refused as Migrations.MigrationError).message).toContain("9001_extra")
      fs.writeFileSync(path.join(dir, "9001_extra.sql"), "CREATE TABLE tidemark.extra (id int);")
      yield* Readiness.ensureReady(dir).pipe(Effect.provide(registry))
      expect((yield* appliedIds).slice(-2)).toEqual([9001, 9002])
    }).pipe(Effect.provide(TestDatabase.layer("ready_files")))
  )
})
