import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import * as Migrations from "../../db/Migrations.js"
import { dbOptions, withDatabase } from "../DbOptions.js"

export const migrateCommand = Command.make(
  "migrate",
  { ...dbOptions, json: Options.boolean("json").pipe(Options.withDescription("Print the result as JSON.")) },
  (flags) =>
    Effect.gen(function* () {
      const applied = yield* Migrations.migrate()
      const { applied: all } = yield* Migrations.status()
      if (flags.json) {
        yield* Console.log(JSON.stringify({ applied: applied.map(Migrations.migrationName), total: all.length }))
      } else if (applied.length === 0) {
        yield* Console.log(`schema up to date (${all.length} migration${all.length === 1 ? "" : "s"} applied)`)
      } else {
        yield* Console.log(`applied ${applied.length}: ${applied.map(Migrations.migrationName).join(", ")}`)
      }
    }).pipe(withDatabase(flags, { migrateFirst: false }))
).pipe(Command.withDescription("Apply pending schema migrations (other commands do this on their own first)."))
