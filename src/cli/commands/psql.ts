/**
 * `tidemark psql [-- ARGS]`: psql on the database tidemark uses, the embedded
 * server (started for the session if it is not running, and stopped after it
 * only if this command started it) or `DATABASE_URL`'s. Without psql installed
 * it says how to get it. psql's exit code is tidemark's.
 */
import { Args, Command } from "@effect/cli"
import * as PlatformCommand from "@effect/platform/Command"
import { Data, Effect, Redacted } from "effect"
import { ConnectionTarget } from "../../db/Database.js"
import { dbOptions, withDatabase } from "../DbOptions.js"

export class PsqlMissing extends Data.TaggedError("PsqlMissing")<{}> {
  override get message() {
    return "psql is not installed"
  }
  get hint() {
    return "install PostgreSQL's client (Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install libpq), or connect any client to `tidemark db url`"
  }
}

export class PsqlFailed extends Data.TaggedError("PsqlFailed")<{ readonly code: number }> {
  override get message() {
    return `psql exited with code ${this.code}`
  }
}

export const psqlCommand = Command.make(
  "psql",
  {
    ...dbOptions,
    args: Args.text({ name: "ARGS" }).pipe(
      Args.withDescription("Arguments for psql, after `--` (e.g. -- -c 'SELECT count(*) FROM tidemark.documents')."),
      Args.repeated
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const target = yield* ConnectionTarget
      const code = yield* PlatformCommand.make("psql", "--dbname", Redacted.value(target.mainUrl), ...flags.args).pipe(
        PlatformCommand.stdin("inherit"),
        PlatformCommand.stdout("inherit"),
        PlatformCommand.stderr("inherit"),
        PlatformCommand.exitCode,
        Effect.mapError((error) =>
          error._tag === "SystemError" && error.reason === "NotFound" ? new PsqlMissing() : error
        )
      )
      if (code !== 0) return yield* new PsqlFailed({ code })
    }).pipe(withDatabase(flags, { scheduleMaintenance: false }))
).pipe(Command.withDescription("Run psql against tidemark's database (the embedded server, or DATABASE_URL's)."))
