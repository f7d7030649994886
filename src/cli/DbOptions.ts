/**
 * The flags every database command accepts, and how they combine with the
 * environment: a flag wins over its variable, which wins over the default.
 */
import { Options } from "@effect/cli"
import * as path from "node:path"
import { Effect, Layer, Logger, LogLevel, Option, type Redacted } from "effect"
import * as Backfills from "../db/Backfills.js"
import * as Database from "../db/Database.js"
import { DbSettings, dbSettingsConfig, isValidPoolSize, poolSizeRange } from "../db/DbSettings.js"
import * as Migrations from "../db/Migrations.js"
import { titleBackfill } from "../sink/titleBackfill.js"

/** The product's own backfills. */
const backfillsLayer = Backfills.register(titleBackfill).pipe(Layer.provideMerge(Backfills.Backfills.Default))

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
  mainPoolSize: Options.integer("main-pool-size").pipe(
    Options.withDescription("Connections in the bulk-data pool (default: $TIDEMARK_MAIN_POOL_SIZE, else 8)."),
    Options.optional
  ),
  directPoolSize: Options.integer("direct-pool-size").pipe(
    Options.withDescription("Connections in the direct pool (default: $TIDEMARK_DIRECT_POOL_SIZE, else 3)."),
    Options.optional
  ),
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

class InvalidPoolSize extends Error {
  readonly hint = `use a pool size between ${poolSizeRange.min} and ${poolSizeRange.max}`
}

const checkedPoolSize = (flag: string, value: Option.Option<number>) =>
  Option.match(value, {
    onNone: () => Effect.succeed(Option.none<number>()),
    onSome: (n) =>
      isValidPoolSize(n)
        ? Effect.succeed(Option.some(n))
        : Effect.fail(new InvalidPoolSize(`--${flag} ${n} is out of range`))
  })

const settingsLayer = (flags: DbFlags) =>
  Layer.effect(
    DbSettings,
    Effect.gen(function* () {
      const fromEnv = yield* dbSettingsConfig
      const mainPoolSize = yield* checkedPoolSize("main-pool-size", flags.mainPoolSize)
      const directPoolSize = yield* checkedPoolSize("direct-pool-size", flags.directPoolSize)
      return {
        databaseUrl: Option.orElse(flags.databaseUrl, () => fromEnv.databaseUrl),
        directDatabaseUrl: Option.orElse(flags.directDatabaseUrl, () => fromEnv.directDatabaseUrl),
        home: Option.match(flags.home, { onNone: () => fromEnv.home, onSome: (home) => path.resolve(home) }),
        mainPoolSize: Option.getOrElse(mainPoolSize, () => fromEnv.mainPoolSize),
        directPoolSize: Option.getOrElse(directPoolSize, () => fromEnv.directPoolSize)
      }
    })
  )

/**
 * Provides settings, the (embedded or external) server, both pools and the
 * backfill registry to a command's work, after bringing the schema up to date
 * and running pending backfills (unless the command is `migrate` itself, which
 * reports what it does).
 */
export const withDatabase =
  (flags: DbFlags, options: { readonly migrateFirst: boolean } = { migrateFirst: true }) =>
  <A, E, R>(self: Effect.Effect<A, E, R>) =>
    (options.migrateFirst
      ? Effect.zipRight(Effect.zipRight(Migrations.migrate(), Backfills.runPending()), self)
      : self
    ).pipe(
      Effect.provide(Layer.mergeAll(Database.layer, backfillsLayer).pipe(Layer.provideMerge(settingsLayer(flags)))),
      flags.verbose ? Logger.withMinimumLogLevel(LogLevel.Debug) : (effect) => effect
    )
