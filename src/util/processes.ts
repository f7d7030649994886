/**
 * What this machine says about another process, by pid.
 *
 * `kill(pid, 0)` succeeds on a zombie: a process that has exited but was not
 * yet reaped by its parent. Where PID 1 does not reap orphans (containers
 * without an init, these machines), a SIGKILLed process can stay a zombie for
 * a long time, and a lease or an embedded-server client of it would look
 * alive. A zombie runs no code and holds nothing: it counts as gone.
 */
import * as fs from "node:fs"

/** The fields of `/proc/<pid>/stat` after the parenthesised command name, or undefined (gone, or not Linux). */
const statFields = (pid: number): ReadonlyArray<string> | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  } catch {
    return undefined
  }
}

/** Whether `pid` is a zombie (Linux; false where /proc is not available). */
export const isZombie = (pid: number): boolean => statFields(pid)?.[0] === "Z"

export const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch (error) {
    // EPERM: it exists, it is just not ours to signal.
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false
  }
  return !isZombie(pid)
}

/** The kernel's start time of a process (Linux), or "" where it is not available. */
export const startTimeOf = (pid: number): string => statFields(pid)?.[19] ?? ""
