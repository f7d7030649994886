/**
 * Starting a payer of maintenance debt in the background: `tidemark maintain`
 * as a detached process that outlives the command that starts it (a sync
 * returns at once; the debt is paid meanwhile). Its output goes to
 * `log/maintain.log` in the home folder. The database settings go to it
 * through the environment, never the command line (where `ps` would show a
 * password).
 *
 * Node's `child_process` rather than @effect/platform's `Command`: a Command's
 * process belongs to the scope that started it and is killed with it, and
 * this one must not be.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Config, Duration, Effect, Option, Redacted } from "effect"
import { DbSettings } from "../../db/DbSettings.js"
import { DebtStore } from "../../maintenance/DebtStore.js"
import { packageRoot } from "../../packageRoot.js"

export const maintenanceModes = ["background", "inline", "off"] as const
export type MaintenanceMode = (typeof maintenanceModes)[number]

/** `TIDEMARK_MAINTENANCE`, else background; `--maintenance` falls back to it. */
export const modeConfig = Config.literal(...maintenanceModes)("TIDEMARK_MAINTENANCE").pipe(
  Config.withDefault<MaintenanceMode>("background")
)

/** How long a scheduled payer may take to start before another command starts one too. */
const onItsWay = Duration.minutes(2)

/** Starts `tidemark maintain [--source S]` detached; returns its pid. */
export const startPayer = (sourceId: string | undefined) =>
  Effect.gen(function* () {
    const settings = yield* DbSettings
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TIDEMARK_HOME: settings.home,
      TIDEMARK_MAIN_POOL_SIZE: String(Math.min(settings.mainPoolSize, 4)),
      TIDEMARK_DIRECT_POOL_SIZE: String(Math.min(settings.directPoolSize, 2))
    }
    Option.match(settings.databaseUrl, {
      onNone: () => delete env["DATABASE_URL"],
      onSome: (url) => (env["DATABASE_URL"] = Redacted.value(url))
    })
    Option.match(settings.directDatabaseUrl, {
      onNone: () => delete env["DIRECT_DATABASE_URL"],
      onSome: (url) => (env["DIRECT_DATABASE_URL"] = Redacted.value(url))
    })
    return yield* Effect.try({
      try: () => {
        const logDir = path.join(settings.home, "log")
        fs.mkdirSync(logDir, { recursive: true, mode: 0o700 })
        const log = fs.openSync(path.join(logDir, "maintain.log"), "a", 0o600)
        try {
          const child = spawn(
            process.execPath,
            [
              path.join(packageRoot, "bin", "tidemark.js"),
              "maintain",
              ...(sourceId === undefined ? [] : ["--source", sourceId])
            ],
            { detached: true, stdio: ["ignore", log, log], env }
          )
          child.unref()
          return child.pid ?? 0
        } finally {
          fs.closeSync(log)
        }
      },
      catch: (cause) => new Error(`could not start the maintenance payer: ${String(cause)}`)
    }).pipe(
      Effect.tap((pid) => Effect.logDebug(`maintenance payer started in the background (pid ${pid})`)),
      Effect.catchAll((error) => Effect.as(Effect.logWarning(`${error.message}; run \`tidemark maintain\``), 0))
    )
  })

/**
 * Any start that finds debt due with nobody paying it (a payer SIGKILLed, a
 * sync killed before it could start one, debt created by a migration)
 * schedules a payer: debt is never stranded.
 */
export const scheduleUnattended = Effect.gen(function* () {
  if ((yield* modeConfig) === "off") return
  const debt = yield* DebtStore
  const sources = yield* debt.unattended(onItsWay)
  if (sources.length === 0) return
  yield* debt.schedule(sources, `scheduled:${os.hostname()}:${process.pid}`)
  yield* startPayer(sources.length === 1 ? sources[0] : undefined)
}).pipe(Effect.catchAll((error) => Effect.logWarning(`could not check for unpaid maintenance: ${error.message}`)))
