/**
 * A zombie process: one that has exited but that its parent does not reap.
 * `sh` starts a short-lived child and then becomes `sleep` (exec), which never
 * waits for it; the child stays a zombie until the sleep ends or is killed.
 */
import { spawn } from "node:child_process"
import * as readline from "node:readline"
import { isZombie } from "../../src/util/processes.js"

export interface Zombie {
  readonly pid: number
  /** Ends the parent, which lets init reap the zombie. */
  readonly reap: () => void
}

export const make = async (): Promise<Zombie> => {
  const parent = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 300"], { stdio: ["ignore", "pipe", "ignore"] })
  const pid = await new Promise<number>((resolve, reject) => {
    readline.createInterface({ input: parent.stdout }).once("line", (line) => resolve(Number(line)))
    parent.once("exit", () => reject(new Error("the zombie's parent exited early")))
  })
  // The child exits at once; it is a zombie from then on.
  while (!isZombie(pid)) await new Promise((resolve) => setTimeout(resolve, 10))
  return { pid, reap: () => parent.kill("SIGKILL") }
}
