/**
 * Which processes are using an embedded server: one file per process in the
 * home's `clients/` folder, named by pid and holding the process's start time
 * (so a recycled pid is not mistaken for the original process). Entries of
 * dead processes (SIGKILLed owners) are pruned by whoever looks next.
 * Callers hold the lifecycle lock around every use.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { isRunning, startTimeOf } from "../../util/processes.js"

/** Whether the process recorded as (pid, startTime) is still that same process. */
const isSameLiveProcess = (pid: number, startTime: string): boolean => {
  if (!isRunning(pid)) return false
  const now = startTimeOf(pid)
  return startTime === "" || now === "" || now === startTime
}

/**
 * Registers `pid` (this process by default). A registered process may hand
 * its place on to a child it started: the child is registered before the
 * parent detaches, so the server is not stopped and started again between
 * the two (no lock needed: the parent's own entry keeps the server up meanwhile).
 */
export const register = (clientsDir: string, pid: number = process.pid): Effect.Effect<void, Error> =>
  Effect.try({
    try: () => {
      fs.mkdirSync(clientsDir, { recursive: true, mode: 0o700 })
      fs.writeFileSync(path.join(clientsDir, String(pid)), startTimeOf(pid))
    },
    catch: (cause) => new Error(`cannot register in ${clientsDir}: ${String(cause)}`)
  })

export const unregister = (clientsDir: string): Effect.Effect<void> =>
  Effect.sync(() => fs.rmSync(path.join(clientsDir, String(process.pid)), { force: true }))

/** Pids of the live processes registered, after removing the entries of dead ones. */
export const liveClients = (clientsDir: string): Effect.Effect<ReadonlyArray<number>> =>
  Effect.sync(() => {
    let names: Array<string>
    try {
      names = fs.readdirSync(clientsDir)
    } catch {
      return []
    }
    const live: Array<number> = []
    for (const name of names) {
      const pid = Number(name)
      const file = path.join(clientsDir, name)
      if (!Number.isInteger(pid) || pid <= 0) continue
      let startTime = ""
      try {
        startTime = fs.readFileSync(file, "utf8").trim()
      } catch {
        continue
      }
      if (isSameLiveProcess(pid, startTime)) live.push(pid)
      else fs.rmSync(file, { force: true })
    }
    return live
  })
