import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import * as Backfills from "../../db/Backfills.js"
import * as Migrations from "../../db/Migrations.js"
import * as Boss from "../../fleet/Boss.js"
import { dbOptions, withDatabase } from "../DbOptions.js"

export const migrateCommand = Command.make(
  "migrate",
  { ...dbOptions, json: Options.boolean("json").pipe(Options.withDescription("Print the result as JSON.")) },
  (flags) =>
    Effect.gen(function* () {
      const applied = yield* Migrations.migrate()
      const { applied: all } = yield* Migrations.status()
      const backfills = yield* Backfills.runPending()
      // The fleet's job engine: pg-boss installs or migrates its own schema as it starts.
      const engine = yield* Effect.flatMap(Boss.Boss, (boss) =>
        Boss.attempt("reading its schema version", () => boss.schemaVersion())
      ).pipe(Effect.provide(Boss.layer({ role: "client" })))
      const ran = backfills
        .filter((b) => b._tag !== "AlreadyDone")
        .map((b) => `${b.step} v${b.version}: ${b._tag === "Completed" ? "done" : `failed (${b.reason})`}`)
      if (flags.json) {
        yield* Console.log(
          JSON.stringify({
            applied: applied.map(Migrations.migrationName),
            total: all.length,
            backfills,
            jobEngine: { schema: Boss.bossSchema, version: engine }
          })
        )
      } else {
        yield* Console.log(
          applied.length === 0
            ? `schema up to date (${all.length} migration${all.length === 1 ? "" : "s"} applied)`
            : `applied ${applied.length}: ${applied.map(Migrations.migrationName).join(", ")}`
        )
        if (ran.length > 0) yield* Console.log(`backfills: ${ran.join("; ")}`)
        yield* Console.log(`job engine: pg-boss schema ${Boss.bossSchema} at version ${engine}`)
      }
    }).pipe(withDatabase(flags, { migrateFirst: false }))
).pipe(
  Command.withDescription(
    "Apply pending schema migrations and backfills (other commands do this on their own first), and install the fleet's job engine (pg-boss) schema."
  )
)
