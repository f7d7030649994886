/**
 * The real CLI (the built `bin/tidemark.js`) and helper programs in child
 * processes, for tests that kill, signal or race them.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"

export const repoRoot = path.resolve(import.meta.dirname, "..", "..")
export const cliBin = path.join(repoRoot, "bin", "tidemark.js")

export interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * The environment of a child: ours, minus any database settings, plus `env`.
 * Maintenance is off unless a test turns it on: a payer in the background would
 * keep the embedded server up and write beside what a test looks at.
 */
export const childEnv = (env: Record<string, string | undefined>): NodeJS.ProcessEnv => {
  const base: NodeJS.ProcessEnv = { ...process.env }
  for (const key of [
    "DATABASE_URL",
    "DIRECT_DATABASE_URL",
    "TIDEMARK_HOME",
    "NODE_OPTIONS",
    "VITEST",
    "VITEST_WORKER_ID"
  ]) {
    delete base[key]
  }
  // Telemetry only where a test asks for it (a collector configured for this shell stays out).
  for (const key of Object.keys(base)) if (key.startsWith("OTEL_")) delete base[key]
  return { ...base, TIDEMARK_MAINTENANCE: "off", ...env }
}

export interface Child {
  readonly process: ChildProcessWithoutNullStreams
  /** Resolves with the first stdout line matching `pattern`. */
  readonly line: (pattern: RegExp) => Promise<string>
  /** Resolves with the first stderr line matching `pattern`. */
  readonly errLine: (pattern: RegExp) => Promise<string>
  /** Whether the process is still running. */
  readonly alive: () => boolean
  readonly finished: Promise<Finished>
}

interface LineWatch {
  readonly lines: Array<string>
  readonly waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }>
}

const watchLines = (input: NodeJS.ReadableStream): LineWatch => {
  const watch: LineWatch = { lines: [], waiters: [] }
  readline.createInterface({ input }).on("line", (line) => {
    watch.lines.push(line)
    for (const waiter of [...watch.waiters]) {
      if (waiter.pattern.test(line)) {
        watch.waiters.splice(watch.waiters.indexOf(waiter), 1)
        waiter.resolve(line)
      }
    }
  })
  return watch
}

export interface RunAs {
  readonly uid: number
  readonly gid: number
}

export const start = (
  file: string,
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined> = {},
  runAs?: RunAs
): Child => {
  const child = spawn(process.execPath, [file, ...args], { env: childEnv(env), cwd: repoRoot, ...runAs })
  let stdout = ""
  let stderr = ""
  let exited = false
  const out = watchLines(child.stdout)
  const err = watchLines(child.stderr)
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  child.once("exit", () => (exited = true))
  const finished = new Promise<Finished>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  )
  const waitFor = (watch: LineWatch, pattern: RegExp, stream: string) =>
    new Promise<string>((resolve, reject) => {
      const seen = watch.lines.find((line) => pattern.test(line))
      if (seen !== undefined) return resolve(seen)
      watch.waiters.push({ pattern, resolve })
      void finished.then((f) =>
        reject(new Error(`exited (${f.code ?? f.signal}) before printing ${pattern} on ${stream}: ${f.stderr}`))
      )
    })
  return {
    process: child,
    finished,
    alive: () => !exited,
    line: (pattern) => waitFor(out, pattern, "stdout"),
    errLine: (pattern) => waitFor(err, pattern, "stderr")
  }
}

export const tidemark = (
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined> = {},
  runAs?: RunAs
): Child => start(cliBin, args, env, runAs)

export const run = (
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined> = {},
  runAs?: RunAs
): Promise<Finished> => tidemark(args, env, runAs).finished

/**
 * An unprivileged user to run the CLI as when the tests run as root (to whom
 * every file is readable): the `postgres` user, which the embedded server
 * already runs as and which can reach its socket.
 */
export const unprivileged = (): RunAs | undefined => {
  if (process.getuid?.() !== 0) return undefined
  const line = fs
    .readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"))
  if (line === undefined) throw new Error("running as root, but there is no postgres user")
  const [, , uid, gid] = line.split(":")
  return { uid: Number(uid), gid: Number(gid) }
}

/** A fresh embedded-server home. */
export const freshHome = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-home-"))

const isZombieOrGone = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")
  } catch {
    try {
      process.kill(pid, 0)
      return false
    } catch {
      return true
    }
  }
}

/** The postmaster pid of the embedded server in `home`, if it is running. */
export const serverPid = (home: string): number | undefined => {
  const pidFile = path.join(home, "pgdata", "postmaster.pid")
  if (!fs.existsSync(pidFile)) return undefined
  const pid = Number(fs.readFileSync(pidFile, "utf8").split("\n")[0])
  return Number.isInteger(pid) && !isZombieOrGone(pid) ? pid : undefined
}

export const isProcessRunning = (pid: number): boolean => !isZombieOrGone(pid)
