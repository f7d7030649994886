/**
 * The flags every database command accepts, and how they combine with the
 * environment: a flag wins over its variable, which wins over the default.
 */
import { Options } from "@effect/cli"
import * as path from "node:path"
import { Effect, Layer, Logger, LogLevel, Option, type Redacted } from "effect"
import * as Database from "../db/Database.js"
import { checkDatabaseUrl, DbSettings, dbSettingsConfig, poolSizeRange } from "../db/DbSettings.js"
import { integerIn } from "./flags.js"
import * as Readiness from "../db/Readiness.js"
import { ownBackfills } from "../db/ownBackfills.js"
import * as PgDebtStore from "../maintenance/PgDebtStore.js"
import { scheduleUnattended } from "./maintenance/Background.js"

export const dbOptions = {
  databaseUrl: Options.redacted("database-url").pipe(
    Options.withDescription(
      "PostgreSQL URL (default: $DATABASE_URL, else the embedded server). Prefer the variable: flags show in `ps`."
    ),
    Options.optional
  ),
  directDatabaseUrl: Options.redacted("direct-database-url").pipe(
    Options.withDescription(
      "URL for lock, checkpoint and state writes, bypassing any pooler (default: $DIRECT_DATABASE_URL, else the main URL)."
    ),
    Options.optional
  ),
  home: Options.text("home").pipe(
    Options.withDescription("Folder of the embedded server (default: $TIDEMARK_HOME, else a per-user data folder)."),
    Options.optional
  ),
  mainPoolSize: integerIn(
    "main-pool-size",
    "Connections in the bulk-data pool (default: $TIDEMARK_MAIN_POOL_SIZE, else 8).",
    poolSizeRange
  ).pipe(Options.optional),
  directPoolSize: integerIn(
    "direct-pool-size",
    "Connections in the direct pool (default: $TIDEMARK_DIRECT_POOL_SIZE, else 3).",
    poolSizeRange
  ).pipe(Options.optional),
  verbose: Options.boolean("verbose").pipe(Options.withDescription("Log debug details to stderr."))
}

export interface DbFlags {
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  readonly directDatabaseUrl: Option.Option<Redacted.Redacted<string>>
  readonly home: Option.Option<string>
  readonly mainPoolSize: Option.Option<number>
  readonly directPoolSize: Option.Option<number>
  readonly verbose: boolean
}

/** A URL from a flag or the environment, checked before anything connects (a malformed one is a usage error). */
const checkedUrl = (
  flag: Option.Option<Redacted.Redacted<string>>,
  flagName: string,
  fromEnv: Option.Option<Redacted.Redacted<string>>,
  variable: string
) =>
  Option.match(
    Option.isSome(flag)
      ? Option.map(flag, (url) => [flagName, url] as const)
      : Option.map(fromEnv, (url) => [variable, url] as const),
    {
      onNone: () => Effect.succeed(Option.none<Redacted.Redacted<string>>()),
      onSome: ([origin, url]) => Effect.map(checkDatabaseUrl(origin, url), Option.some)
    }
  )

/** The settings of the flags and the environment, for a command that manages the server itself. */
export const settingsLayer = (flags: DbFlags) =>
  Layer.effect(
    DbSettings,
    Effect.gen(function* () {
      const fromEnv = yield* dbSettingsConfig
      return {
        databaseUrl: yield* checkedUrl(flags.databaseUrl, "--database-url", fromEnv.databaseUrl, "DATABASE_URL"),
        directDatabaseUrl: yield* checkedUrl(
          flags.directDatabaseUrl,
          "--direct-database-url",
          fromEnv.directDatabaseUrl,
          "DIRECT_DATABASE_URL"
        ),
        home: Option.match(flags.home, { onNone: () => fromEnv.home, onSome: (home) => path.resolve(home) }),
        mainPoolSize: Option.getOrElse(flags.mainPoolSize, () => fromEnv.mainPoolSize),
        directPoolSize: Option.getOrElse(flags.directPoolSize, () => fromEnv.directPoolSize)
      }
    })
  )

/**
 * Provides settings, the (embedded or external) server, both pools and the
 * backfill registry to a command's work, after bringing the schema up to date
 * and running pending backfills (unless the command is `migrate` itself, which
 * reports what it does), and after starting a payer for maintenance debt that
 * nobody is paying (unless the command is `maintain`, or maintenance is off).
 */
export const withDatabase =
  (flags: DbFlags, options: { readonly migrateFirst?: boolean; readonly scheduleMaintenance?: boolean } = {}) =>
  <A, E, R>(self: Effect.Effect<A, E, R>) =>
    Effect.gen(function* () {
      if (options.migrateFirst ?? true) {
        yield* Readiness.ensureReady()
      }
      // Debt nobody is paying (a killed sync or payer left it) gets a payer now.
      if (options.scheduleMaintenance ?? true) yield* scheduleUnattended.pipe(Effect.provide(PgDebtStore.layer))
      return yield* self
    }).pipe(
      Effect.provide(Layer.mergeAll(Database.layer, ownBackfills).pipe(Layer.provideMerge(settingsLayer(flags)))),
      flags.verbose ? Logger.withMinimumLogLevel(LogLevel.Debug) : (effect) => effect
    )
