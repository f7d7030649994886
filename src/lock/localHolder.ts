/**
 * Recognising a lease abandoned by a dead process on this very machine.
 *
 * A holder id starts with this machine's node id: a hash of the hostname, the
 * kernel's boot id and the pid namespace, so that a pid in the id means the
 * same process to every process that shares the node id. If that pid no
 * longer exists, the lease is provably abandoned and may be taken over at
 * once instead of after its ttl. The same holds for a lease of this very
 * process whose scope has closed without releasing it (the release failed).
 * A recycled pid only makes us wait (safe); a holder on another machine is
 * always left to expire.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import { isRunning } from "../util/processes.js"

const readOrEmpty = (file: string) => {
  try {
    return fs.readFileSync(file, "utf8").trim()
  } catch {
    return ""
  }
}

const pidNamespace = () => {
  try {
    return fs.readlinkSync("/proc/self/ns/pid")
  } catch {
    return ""
  }
}

const localNode: string = createHash("sha256")
  .update([os.hostname(), readOrEmpty("/proc/sys/kernel/random/boot_id"), pidNamespace()].join("\0"))
  .digest("hex")
  .slice(0, 12)

export const holderId = (pid: number, nonce: string) => `${localNode}:${pid}:${nonce}`

/** Holder ids of the leases this process holds right now (their scopes are open). */
const heldHere = new Set<string>()

export const markHeld = (holder: string) => heldHere.add(holder)
export const markReleased = (holder: string) => heldHere.delete(holder)

/** Whether `holder` names a process of this machine that no longer exists, or a lease this process let go. */
export const isAbandonedLocally = (holder: string, pid: number): boolean =>
  holder.startsWith(`${localNode}:${pid}:`) && (pid === process.pid ? !heldHere.has(holder) : !isRunning(pid))
