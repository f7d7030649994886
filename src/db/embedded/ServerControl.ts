/**
 * The embedded server as a server of its own: `tidemark db start` starts it
 * (or keeps the one running) until `tidemark db stop`, optionally listening on
 * a loopback TCP port with a generated password; `db url` describes it without
 * starting anything. Every step runs under the lifecycle lock, as attaching and
 * detaching do, so a command that detaches meanwhile never stops a server that
 * `db start` is taking over. A server tidemark did not start is never stopped.
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import pg from "pg"
import { Data, Effect, Option } from "effect"
import * as ClientRegistry from "./ClientRegistry.js"
import * as LifecycleLock from "./LifecycleLock.js"
import * as Ownership from "./Ownership.js"
import { databaseName, type EmbeddedPaths, serverPort, socketUrl, superuser } from "./paths.js"
import * as PgServer from "./PgServer.js"
import { ensureDatabase } from "./EmbeddedServer.js"

/** A request the running server cannot grant as it is (said with what to do instead). */
export class ServerInUse extends Data.TaggedError("ServerInUse")<{ readonly reason: string; readonly hint: string }> {
  override get message() {
    return this.reason
  }
}

export interface ServerState {
  readonly running: boolean
  readonly pid: number | null
  readonly port: number
  readonly startedBy: "command" | "db start" | "other" | null
  readonly tcp: boolean
  /** Over the Unix socket: no password (the socket is private to this user). */
  readonly socketUrl: string
  /** Over 127.0.0.1, with the password from `passFile` (libpq's `passfile`); null without TCP. */
  readonly tcpUrl: string | null
  readonly passwordFile: string | null
  readonly home: string
  readonly dataDir: string
  readonly logFile: string
}

const tcpUrl = (port: number) => `postgresql://${superuser}@127.0.0.1:${port}/${databaseName}`

/** The TCP URL with the password in it, for clients that do not read a password file. */
export const tcpUrlWithPassword = (paths: EmbeddedPaths, port: number): string =>
  `postgresql://${superuser}:${encodeURIComponent(fs.readFileSync(paths.passwordFile, "utf8").trim())}@127.0.0.1:${port}/${databaseName}`

const stateOf = (paths: EmbeddedPaths, pid: number | undefined, owner: Option.Option<Ownership.Owner>): ServerState => {
  const port = pid === undefined ? serverPort : PgServer.runningPort(paths)
  const tcp = Option.match(owner, { onNone: () => false, onSome: (o) => o.tcp })
  return {
    running: pid !== undefined,
    pid: pid ?? null,
    port,
    startedBy: pid === undefined ? null : Option.match(owner, { onNone: () => "other" as const, onSome: (o) => o.by }),
    tcp,
    socketUrl: socketUrl(paths, databaseName, port),
    tcpUrl: tcp ? `${tcpUrl(port)}?passfile=${encodeURIComponent(paths.passFile)}` : null,
    passwordFile: tcp ? paths.passwordFile : null,
    home: paths.home,
    dataDir: paths.dataDir,
    logFile: paths.logFile
  }
}

/** What runs now, started by whom; starts nothing. */
export const describe = Effect.fn("ServerControl.describe")(function* (paths: EmbeddedPaths) {
  if (!PgServer.isInitialized(paths)) return stateOf(paths, undefined, Option.none())
  const runAs = yield* PgServer.resolveRunAs
  const pid = yield* PgServer.runningPid(paths, runAs)
  return stateOf(paths, pid, pid === undefined ? Option.none() : yield* Ownership.read(paths, pid))
})

/** The password of the TCP port: made once, kept in the home folder, readable by its owner only. */
const password = (paths: EmbeddedPaths): string => {
  if (!fs.existsSync(paths.passwordFile)) {
    fs.writeFileSync(paths.passwordFile, `${randomBytes(24).toString("base64url")}\n`, { mode: 0o600 })
  }
  fs.chmodSync(paths.passwordFile, 0o600)
  return fs.readFileSync(paths.passwordFile, "utf8").trim()
}

const setPassword = (paths: EmbeddedPaths, port: number, secret: string) =>
  Effect.tryPromise({
    try: async () => {
      const client = new pg.Client({ connectionString: socketUrl(paths, "postgres", port) })
      await client.connect()
      try {
        // A literal, not a parameter (ALTER ROLE takes none): base64url has no quote to escape.
        await client.query(`ALTER ROLE ${superuser} PASSWORD '${secret}'`)
      } finally {
        await client.end()
      }
      // libpq's password file: host:port:database:user:password.
      fs.writeFileSync(paths.passFile, `127.0.0.1:${port}:*:${superuser}:${secret}\n`, { mode: 0o600 })
      fs.chmodSync(paths.passFile, 0o600)
    },
    catch: (cause) =>
      new PgServer.EmbeddedServerError({
        reason: `cannot set the password of the TCP port: ${cause instanceof Error ? cause.message : String(cause)}`
      })
  })

/**
 * Starts the server and keeps it running until `stop`: one started by a command
 * is kept from now on; one started by someone else is left as it is. A TCP port
 * is only opened by a start (never on a server in use without one).
 */
export const start = Effect.fn("ServerControl.start")(function* (
  paths: EmbeddedPaths,
  options: { readonly port: Option.Option<number> }
) {
  yield* LifecycleLock.acquire({ home: paths.home, lockKey: paths.lockKey })
  const runAs = yield* PgServer.resolveRunAs
  yield* PgServer.prepareHome(paths, runAs)
  const running = yield* PgServer.runningPid(paths, runAs)
  if (running !== undefined) {
    const owner = yield* Ownership.read(paths, running)
    const current = stateOf(paths, running, owner)
    if (Option.isSome(options.port) && !(current.tcp && current.port === options.port.value)) {
      return yield* new ServerInUse({
        reason: `the embedded server is already running${current.tcp ? ` on port ${current.port}` : " without TCP"}`,
        hint:
          current.startedBy === "other"
            ? "it was not started by tidemark: stop it yourself, then run tidemark db start --port again"
            : "run tidemark db stop (it stops once the commands using it finish), then tidemark db start --port again"
      })
    }
    if (Option.isSome(owner) && owner.value.by === "command") {
      yield* Ownership.write(paths, { ...owner.value, by: "db start" })
    }
    return { state: stateOf(paths, running, yield* Ownership.read(paths, running)), started: false }
  }
  if (!PgServer.isInitialized(paths)) yield* PgServer.initialize(paths, runAs)
  const listen: PgServer.Listen = Option.match(options.port, {
    onNone: () => PgServer.socketOnly,
    onSome: (port) => ({ port, tcp: true })
  })
  if (listen.tcp) yield* PgServer.allowLoopbackTcp(paths)
  yield* PgServer.start(paths, runAs, listen)
  const pid = yield* PgServer.runningPid(paths, runAs)
  if (pid === undefined) {
    return yield* new PgServer.EmbeddedServerError({
      reason: "the server started but is not running",
      hint: `see ${paths.logFile}`
    })
  }
  yield* Ownership.write(paths, { by: "db start", pid, port: listen.port, tcp: listen.tcp })
  yield* ensureDatabase(paths)
  if (listen.tcp) yield* setPassword(paths, listen.port, password(paths))
  return { state: stateOf(paths, pid, yield* Ownership.read(paths, pid)), started: true }
}, Effect.scoped)

/**
 * Stops a server that tidemark started: at once when no command uses it, else
 * by the last of them to finish. A server someone else started is refused.
 */
export const stop = Effect.fn("ServerControl.stop")(function* (paths: EmbeddedPaths) {
  yield* LifecycleLock.acquire({ home: paths.home, lockKey: paths.lockKey })
  if (!PgServer.isInitialized(paths)) return { outcome: "not running" as const, clients: 0 }
  const runAs = yield* PgServer.resolveRunAs
  const pid = yield* PgServer.runningPid(paths, runAs)
  if (pid === undefined) return { outcome: "not running" as const, clients: 0 }
  const owner = yield* Ownership.read(paths, pid)
  if (Option.isNone(owner)) {
    return yield* new ServerInUse({
      reason: `the embedded server (pid ${pid}) was not started by tidemark: left running`,
      hint: `stop it the way it was started (e.g. pg_ctl stop -D ${paths.dataDir})`
    })
  }
  const clients = yield* ClientRegistry.liveClients(paths.clientsDir)
  if (clients.length > 0) {
    // Handed back to the commands using it: the last one to finish stops it.
    yield* Ownership.write(paths, { ...owner.value, by: "command" })
    return { outcome: "stops when the commands using it finish" as const, clients: clients.length }
  }
  yield* PgServer.stop(paths, runAs)
  yield* Ownership.remove(paths)
  return { outcome: "stopped" as const, clients: 0 }
}, Effect.scoped)
