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
import { Config, Duration, Effect, Option, Redacted, Schedule } from "effect"
import { DbSettings } from "../../db/DbSettings.js"
import * as ClientRegistry from "../../db/embedded/ClientRegistry.js"
import { embeddedPaths } from "../../db/embedded/paths.js"
import { DebtStore } from "../../maintenance/DebtStore.js"
import { packageRoot } from "../../packageRoot.js"
import { isRunning } from "../../util/processes.js"

export const maintenanceModes = ["background", "inline", "off"] as const
export type MaintenanceMode = (typeof maintenanceModes)[number]

/** `TIDEMARK_MAINTENANCE`, else background; `--maintenance` falls back to it. */
export const modeConfig = Config.literal(...maintenanceModes)("TIDEMARK_MAINTENANCE").pipe(
  Config.withDefault<MaintenanceMode>("background")
)

/** How long a scheduled payer may take to start before another command starts one too. */
const onItsWay = Duration.minutes(2)

/**
 * Set for a payer started by a command that is about to exit (a sync): the
 * payer waits for that pid to be gone before it opens the database, so that
 * its start-up does not slow the exit of the command the user is waiting for.
 */
export const starterPidVariable = "TIDEMARK_PAYER_AFTER_PID"

/** How long a payer waits for its starter to exit before it goes ahead anyway. */
const starterGrace = Duration.seconds(30)

/**
 * Starts `tidemark maintain [--source S]` detached, at the lowest CPU priority
 * (it is background work: the user's next command comes first); returns its
 * pid. `starterExits`: the caller exits next, and the payer waits for that.
 */
export const startPayer = (sourceId: string | undefined, options: { readonly starterExits?: boolean } = {}) =>
  Effect.gen(function* () {
    const settings = yield* DbSettings
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TIDEMARK_HOME: settings.home,
      TIDEMARK_MAIN_POOL_SIZE: String(Math.min(settings.mainPoolSize, 4)),
      TIDEMARK_DIRECT_POOL_SIZE: String(Math.min(settings.directPoolSize, 2))
    }
    if (options.starterExits === true) env[starterPidVariable] = String(process.pid)
    else delete env[starterPidVariable]
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
          if (child.pid !== undefined) {
            try {
              os.setPriority(child.pid, 19)
            } catch {
              // Not allowed here: it runs at normal priority.
            }
          }
          return child.pid ?? 0
        } finally {
          fs.closeSync(log)
        }
      },
      catch: (cause) => new Error(`could not start the maintenance payer: ${String(cause)}`)
    }).pipe(
      // On the embedded server, the payer is its client from now: the server
      // stays up for it when this command detaches. (Not registered: the payer
      // starts the server again itself.)
      Effect.tap((pid) =>
        pid > 0 && Option.isNone(settings.databaseUrl)
          ? ClientRegistry.register(embeddedPaths(settings.home).clientsDir, pid).pipe(
              Effect.catchAll((error) => Effect.logDebug(error.message))
            )
          : Effect.void
      ),
      Effect.tap((pid) => Effect.logDebug(`maintenance payer started in the background (pid ${pid})`)),
      Effect.catchAll((error) => Effect.as(Effect.logWarning(`${error.message}; run \`tidemark maintain\``), 0))
    )
  })

/**
 * In a payer started by a command about to exit: waits until that command is
 * gone (a zombie counts as gone), polling, for at most `starterGrace`.
 */
export const awaitStarterExit = Effect.gen(function* () {
  const pid = Number(process.env[starterPidVariable] ?? "")
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || !isRunning(pid)) return
  yield* Effect.logInfo(`waiting for the command that started this payer (pid ${pid}) to exit`)
  yield* Effect.sync(() => isRunning(pid)).pipe(
    Effect.repeat({
      while: (running) => running,
      schedule: Schedule.spaced(Duration.millis(20)).pipe(Schedule.upTo(starterGrace))
    })
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
