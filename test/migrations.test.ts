import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { DirectDb } from "../src/db/Database.js"
import * as Database from "../src/db/Database.js"
import * as Migrations from "../src/db/Migrations.js"
import { migrationsDirWith } from "./support/migrationsDir.js"
import * as TestDatabase from "./support/TestDatabase.js"

const tablesIn = (schema: string) =>
  Effect.flatMap(
    DirectDb,
    ({ sql }) =>
      sql<{ table_name: string }>`
      SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema} ORDER BY table_name`
  ).pipe(Effect.map((rows) => rows.map((r) => r.table_name)))

const ledger = Effect.flatMap(
  DirectDb,
  ({ sql }) => sql<{ id: number; name: string }>`SELECT id, name FROM tidemark.schema_migrations ORDER BY id`
)

describe("migrations", () => {
  it.scoped("apply once, create the schema, and are idempotent", () =>
    Effect.gen(function* () {
      const shipped = yield* Migrations.loadMigrations()
      const first = yield* Migrations.migrate()
      expect(first.map(Migrations.migrationName)).toEqual(shipped.map(Migrations.migrationName))
      expect(yield* tablesIn("tidemark")).toEqual([
        "backfill_state",
        "documents",
        "entries",
        "fleet_sources",
        "item_errors",
        "jsonl_entries",
        "jsonl_files",
        "link_names",
        "link_refs",
        "links",
        "locks",
        "maintenance_debt",
        "op_items",
        "ops",
        "run_state",
        "schema_migrations",
        "sources"
      ])
      const second = yield* Migrations.migrate()
      expect(second).toEqual([])
      expect((yield* ledger).length).toBe(shipped.length)
      const status = yield* Migrations.status()
      expect(status.pending).toEqual([])
    }).pipe(Effect.provide(TestDatabase.layer("migrate_once")))
  )

  it.scoped("status on a fresh database reports everything pending without creating anything", () =>
    Effect.gen(function* () {
      const status = yield* Migrations.status()
      expect(status.applied).toEqual([])
      expect(status.pending.length).toBeGreaterThan(0)
      expect(yield* tablesIn("tidemark")).toEqual([])
    }).pipe(Effect.provide(TestDatabase.layer("status_fresh")))
  )

  it.scoped("two migrators racing on a fresh database both succeed and apply each migration once", () =>
    Effect.gen(function* () {
      const url = yield* TestDatabase.freshDatabase("race")
      const migrator = Migrations.migrate().pipe(
        Effect.provide(Database.layer.pipe(Layer.provideMerge(TestDatabase.settingsFor(url))))
      )
      // Several rounds: a collision is a race, so give it chances to happen.
      const results = yield* Effect.all([migrator, migrator, migrator, migrator], { concurrency: "unbounded" })
      const shipped = yield* Migrations.loadMigrations()
      expect(results.flat().map(Migrations.migrationName).sort()).toEqual(shipped.map(Migrations.migrationName).sort())
      const rows = yield* ledger.pipe(
        Effect.provide(Database.layer.pipe(Layer.provideMerge(TestDatabase.settingsFor(url))))
      )
      expect(rows.map((r) => r.id)).toEqual(shipped.map((m) => m.id))
    })
  )

  it.scoped("a failing migration rolls back with its record, and a fixed one applies on the next run", () =>
    Effect.gen(function* () {
      const dir = migrationsDirWith({
        "9001_broken.sql": "CREATE TABLE tidemark.half_done (id int);\nSELECT * FROM no_such_table;"
      })
      const error = yield* Effect.flip(Migrations.migrate(dir))
      expect(error).toBeInstanceOf(Migrations.MigrationError)
      expect(error.message).toContain("9001_broken")
      expect(error.message).toContain("no_such_table")
      expect(yield* tablesIn("tidemark")).not.toContain("half_done")
      expect((yield* ledger).map((r) => r.id)).not.toContain(9001)

      fs.writeFileSync(path.join(dir, "9001_broken.sql"), "CREATE TABLE tidemark.half_done (id int);")
      const applied = yield* Migrations.migrate(dir)
      expect(applied.map(Migrations.migrationName)).toEqual(["9001_broken"])
      expect(yield* tablesIn("tidemark")).toContain("half_done")
    }).pipe(Effect.provide(TestDatabase.layer("migrate_fail")))
  )

  it.scoped("an applied migration whose file changed is refused", () =>
    Effect.gen(function* () {
      const dir = migrationsDirWith({ "9002_extra.sql": "CREATE TABLE tidemark.extra (id int);" })
      yield* Migrations.migrate(dir)
      fs.writeFileSync(path.join(dir, "9002_extra.sql"), "CREATE TABLE tidemark.extra (id bigint);")
      const error = yield* Effect.flip(Migrations.migrate(dir))
      expect(error.message).toContain("9002_extra")
      expect(error.message).toContain("changed after it was applied")
    }).pipe(Effect.provide(TestDatabase.layer("migrate_changed")))
  )

  it.effect("badly named and duplicate-numbered files are refused before touching the database", () =>
    Effect.gen(function* () {
      const badName = migrationsDirWith({ "12_oops.sql": "SELECT 1;" })
      expect((yield* Effect.flip(Migrations.loadMigrations(badName))).message).toContain("12_oops.sql")
      const duplicate = migrationsDirWith({ "0001_again.sql": "SELECT 1;" })
      expect((yield* Effect.flip(Migrations.loadMigrations(duplicate))).message).toContain("share this number")
    })
  )
})
