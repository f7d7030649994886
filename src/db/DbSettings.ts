/**
 * Where the database is and how big the two pools are, read from the
 * environment (the CLI overrides any of it with flags).
 */
import * as os from "node:os"
import * as path from "node:path"
import { Config, type ConfigError, Context, Layer, Option, Redacted } from "effect"

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

export const layerFromEnv: Layer.Layer<DbSettings, ConfigError.ConfigError> = Layer.effect(DbSettings, dbSettingsConfig)

export const layer = (settings: DbSettingsShape): Layer.Layer<DbSettings> => Layer.succeed(DbSettings, settings)
