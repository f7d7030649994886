/**
 * The embedded PostgreSQL server as a scoped service. Attaching registers this
 * process as a client and starts the server if it is not running (adopting it
 * otherwise, including one orphaned by a SIGKILLed process); detaching
 * unregisters and stops the server when no live client remains — if a command
 * started it (`Ownership`): one kept by `tidemark db start`, or started by hand,
 * runs on. Both run under the cross-process lifecycle lock, so a stop and a
 * start never interleave.
 */
import pg from "pg"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { DbSettings } from "../DbSettings.js"
import * as ClientRegistry from "./ClientRegistry.js"
import * as LifecycleLock from "./LifecycleLock.js"
import * as Ownership from "./Ownership.js"
import { databaseName, type EmbeddedPaths, embeddedPaths, serverPort, socketUrl } from "./paths.js"
import * as PgServer from "./PgServer.js"

export { EmbeddedServerError } from "./PgServer.js"

export interface EmbeddedServerShape {
  readonly paths: EmbeddedPaths
  /** Reaches the `tidemark` database over the Unix socket. No password: the socket is private. */
  readonly url: Redacted.Redacted<string>
  /** Whether this process found the server already running. */
  readonly adopted: boolean
  /** Who started it: a command (stopped when the last one is done), `db start`, or someone else. */
  readonly startedBy: "command" | "db start" | "other"
  readonly serverPid: number
  readonly majorVersion: string
}

export class EmbeddedServer extends Context.Tag("tidemark/EmbeddedServer")<EmbeddedServer, EmbeddedServerShape>() {}

export const ensureDatabase = (paths: EmbeddedPaths): Effect.Effect<void, PgServer.EmbeddedServerError> =>
  Effect.tryPromise({
    try: async () => {
      const client = new pg.Client({ connectionString: socketUrl(paths, "postgres", PgServer.runningPort(paths)) })
      await client.connect()
      try {
        const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [databaseName])
        if (found.rowCount === 0) await client.query(`CREATE DATABASE ${databaseName}`)
      } finally {
        await client.end()
      }
    },
    catch: (cause) =>
      new PgServer.EmbeddedServerError({
        reason: `cannot create the ${databaseName} database: ${cause instanceof Error ? cause.message : String(cause)}`
      })
  })

const attach = (paths: EmbeddedPaths) =>
  Effect.gen(function* () {
    yield* LifecycleLock.acquire({ home: paths.home, lockKey: paths.lockKey })
    const runAs = yield* PgServer.resolveRunAs
    yield* PgServer.prepareHome(paths, runAs)
    yield* ClientRegistry.register(paths.clientsDir)
    let serverPid = yield* PgServer.runningPid(paths, runAs)
    const adopted = serverPid !== undefined
    if (serverPid === undefined) {
      if (!PgServer.isInitialized(paths)) yield* PgServer.initialize(paths, runAs)
      yield* PgServer.start(paths, runAs)
      serverPid = yield* PgServer.runningPid(paths, runAs)
      if (serverPid !== undefined)
        yield* Ownership.write(paths, { by: "command", pid: serverPid, port: serverPort, tcp: false })
      yield* Effect.logInfo(
        `embedded PostgreSQL ${PgServer.majorVersion(paths)} started in ${paths.home} (Unix socket only)`
      )
    } else {
      yield* Effect.logDebug(`embedded PostgreSQL adopted (pid ${serverPid}) in ${paths.home}`)
    }
    yield* ensureDatabase(paths)
    const owner = yield* Ownership.read(paths, serverPid ?? 0)
    return {
      runAs,
      adopted,
      serverPid: serverPid ?? 0,
      startedBy: Option.match(owner, { onNone: () => "other" as const, onSome: (o) => o.by })
    }
  }).pipe(
    Effect.onError(() => ClientRegistry.unregister(paths.clientsDir)),
    Effect.scoped
  )

const detach = (paths: EmbeddedPaths, runAs: PgServer.RunAs) =>
  Effect.gen(function* () {
    yield* LifecycleLock.acquire({ home: paths.home, lockKey: paths.lockKey })
    yield* ClientRegistry.unregister(paths.clientsDir)
    const others = yield* ClientRegistry.liveClients(paths.clientsDir)
    if (others.length > 0) {
      yield* Effect.logDebug(`embedded PostgreSQL left running for ${others.length} other process(es)`)
      return
    }
    const pid = yield* PgServer.runningPid(paths, runAs)
    if (pid === undefined) return
    const owner = yield* Ownership.read(paths, pid)
    if (Option.isNone(owner) || owner.value.by !== "command") {
      yield* Effect.logDebug(
        `embedded PostgreSQL left running: ${Option.isNone(owner) ? "not started by tidemark" : "kept by tidemark db start"}`
      )
      return
    }
    yield* PgServer.stop(paths, runAs)
    yield* Ownership.remove(paths)
    yield* Effect.logInfo(`embedded PostgreSQL stopped (${paths.home})`)
  }).pipe(
    Effect.scoped,
    Effect.catchAll((error) => Effect.logWarning(`could not detach from the embedded server: ${error.message}`))
  )

/** Attaches to the embedded server in `home` for the life of the scope. */
export const make = (home: string) =>
  Effect.gen(function* () {
    const paths = embeddedPaths(home)
    const attached = yield* Effect.acquireRelease(attach(paths), ({ runAs }) => detach(paths, runAs))
    return EmbeddedServer.of({
      paths,
      url: Redacted.make(socketUrl(paths, databaseName, PgServer.runningPort(paths))),
      adopted: attached.adopted,
      startedBy: attached.startedBy,
      serverPid: attached.serverPid,
      majorVersion: PgServer.majorVersion(paths)
    })
  })

export const layer = Layer.scoped(
  EmbeddedServer,
  Effect.flatMap(DbSettings, (settings) => make(settings.home))
)
