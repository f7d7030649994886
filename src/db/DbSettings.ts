/**
 * Where the database is and how big the two pools are, read from the
 * environment (the CLI overrides any of it with flags).
 */
import * as os from "node:os"
import * as path from "node:path"
import { Config, type ConfigError, Context, Data, Effect, Either, Layer, Option, Redacted } from "effect"

export interface DbSettingsShape {
  /** `DATABASE_URL`. None: the embedded server in `home`. */
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  /** `DIRECT_DATABASE_URL`. None: the main URL (still a pool of its own). */
  readonly directDatabaseUrl: Option.Option<Redacted.Redacted<string>>
  /** `TIDEMARK_HOME`: the embedded server's folder. */
  readonly home: string
  readonly mainPoolSize: number
  readonly directPoolSize: number
}

export class DbSettings extends Context.Tag("tidemark/DbSettings")<DbSettings, DbSettingsShape>() {}

/** A database URL that cannot be used. Says where it came from and why, never what it is (it may hold a password). */
export class InvalidDatabaseUrl extends Data.TaggedError("InvalidDatabaseUrl")<{
  /** The variable or flag that gave it. */
  readonly origin: string
  readonly reason: string
}> {
  override get message() {
    return `${this.origin} is not a usable PostgreSQL URL: ${this.reason}`
  }
  get hint() {
    return "use the form postgresql://HOST:PORT/DATABASE with USER:PASSWORD@ before the host, or postgresql://USER@/DATABASE?host=/socket/folder for a Unix socket"
  }
}

const urlSchemes = new Set(["postgresql:", "postgres:", "socket:"])

/** Checks that `url` is a URL the driver reads as one (not a path, not a hostname, not a key=value string). */
export const checkDatabaseUrl = (
  origin: string,
  url: Redacted.Redacted<string>
): Either.Either<Redacted.Redacted<string>, InvalidDatabaseUrl> => {
  const text = Redacted.value(url).trim()
  let parsed: URL
  try {
    parsed = new URL(text)
  } catch {
    return Either.left(new InvalidDatabaseUrl({ origin, reason: "it is malformed (not a URL)" }))
  }
  if (!urlSchemes.has(parsed.protocol)) {
    return Either.left(new InvalidDatabaseUrl({ origin, reason: "it must start with postgresql:// or postgres://" }))
  }
  if (parsed.port !== "" && !(Number(parsed.port) > 0 && Number(parsed.port) < 65536)) {
    return Either.left(new InvalidDatabaseUrl({ origin, reason: `its port ${parsed.port} is out of range` }))
  }
  try {
    decodeURIComponent(parsed.username)
    decodeURIComponent(parsed.password)
    decodeURIComponent(parsed.pathname)
  } catch {
    return Either.left(new InvalidDatabaseUrl({ origin, reason: "it has a malformed %-escape" }))
  }
  return Either.right(url)
}

export const defaultMainPoolSize = 8
export const defaultDirectPoolSize = 3

/**
 * The per-user data folder. As root the server runs as the `postgres` user,
 * which cannot enter `/root`, so root's default lives in `/var/lib`.
 */
export const defaultHome = (): string => {
  if (process.getuid?.() === 0) return "/var/lib/tidemark"
  const home = os.homedir()
  if (process.platform === "darwin") return path.join(home, "Library", "Application Support", "tidemark")
  const dataHome = process.env["XDG_DATA_HOME"]
  return path.join(
    dataHome !== undefined && dataHome !== "" ? dataHome : path.join(home, ".local", "share"),
    "tidemark"
  )
}

/** Pool sizes tidemark accepts, from the environment or from flags. */
export const poolSizeRange = { min: 1, max: 100 } as const
export const isValidPoolSize = (n: number) => Number.isInteger(n) && n >= poolSizeRange.min && n <= poolSizeRange.max

const poolSize = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({
      message: `${name} must be between ${poolSizeRange.min} and ${poolSizeRange.max}`,
      validation: isValidPoolSize
    }),
    Config.withDefault(fallback)
  )

const nonEmptyUrl = (name: string) =>
  Config.option(Config.redacted(name)).pipe(Config.map(Option.filter((url) => Redacted.value(url).trim() !== "")))

export const dbSettingsConfig: Config.Config<DbSettingsShape> = Config.all({
  databaseUrl: nonEmptyUrl("DATABASE_URL"),
  directDatabaseUrl: nonEmptyUrl("DIRECT_DATABASE_URL"),
  home: Config.string("TIDEMARK_HOME").pipe(
    Config.map((home) => path.resolve(home)),
    Config.orElse(() => Config.sync(defaultHome))
  ),
  mainPoolSize: poolSize("TIDEMARK_MAIN_POOL_SIZE", defaultMainPoolSize),
  directPoolSize: poolSize("TIDEMARK_DIRECT_POOL_SIZE", defaultDirectPoolSize)
})

/** Settings from the environment, with the URLs checked (a malformed one fails with `InvalidDatabaseUrl`). */
export const layerFromEnv: Layer.Layer<DbSettings, ConfigError.ConfigError | InvalidDatabaseUrl> = Layer.effect(
  DbSettings,
  Effect.flatMap(dbSettingsConfig, (settings) =>
    Effect.all({
      databaseUrl: Option.match(settings.databaseUrl, {
        onNone: () => Effect.succeedNone,
        onSome: (url) => Effect.map(checkDatabaseUrl("DATABASE_URL", url), Option.some)
      }),
      directDatabaseUrl: Option.match(settings.directDatabaseUrl, {
        onNone: () => Effect.succeedNone,
        onSome: (url) => Effect.map(checkDatabaseUrl("DIRECT_DATABASE_URL", url), Option.some)
      })
    }).pipe(Effect.map((urls) => ({ ...settings, ...urls })))
  )
)

export const layer = (settings: DbSettingsShape): Layer.Layer<DbSettings> => Layer.succeed(DbSettings, settings)
