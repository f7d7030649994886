/**
 * The two connection pools. `MainDb` carries bulk data and may go through a
 * transaction pooler; `DirectDb` is small, session-level and reserved for
 * checkpoint, lock and run-state writes, so they never queue behind bulk
 * traffic. Each is its own `pg` pool with an `application_name` that names it.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import pg from "pg"
import { DbSettings } from "./DbSettings.js"
import * as Embedded from "./embedded/EmbeddedServer.js"
import { connectRetryPolicy, retryTransient } from "./Transient.js"

export type PoolRole = "main" | "direct"

export interface DbPool {
  readonly role: PoolRole
  readonly sql: PgClient.PgClient
  readonly maxConnections: number
  readonly applicationName: string
}

export class MainDb extends Context.Tag("tidemark/MainDb")<MainDb, DbPool>() {}
export class DirectDb extends Context.Tag("tidemark/DirectDb")<DirectDb, DbPool>() {}

/** What to show a person about a server: never a password. */
export interface Endpoint {
  readonly user: string
  readonly host: string
  readonly port: number
  readonly database: string
}

export type Location =
  | {
      readonly _tag: "Embedded"
      readonly home: string
      readonly socketDir: string
      readonly serverPid: number
      readonly adopted: boolean
      /** A command (stopped when the last one is done), `db start` (runs until `db stop`), or someone else. */
      readonly startedBy: "command" | "db start" | "other"
    }
  | { readonly _tag: "External"; readonly main: Endpoint; readonly direct: Endpoint }

export interface ConnectionTargetShape {
  readonly mainUrl: Redacted.Redacted<string>
  readonly directUrl: Redacted.Redacted<string>
  readonly location: Location
}

export class ConnectionTarget extends Context.Tag("tidemark/ConnectionTarget")<
  ConnectionTarget,
  ConnectionTargetShape
>() {}

export const endpointOf = (url: Redacted.Redacted<string>): Endpoint => {
  try {
    const parsed = new URL(Redacted.value(url))
    const host = parsed.hostname !== "" ? parsed.hostname : (parsed.searchParams.get("host") ?? "localhost")
    return {
      user: decodeURIComponent(parsed.username) || (parsed.searchParams.get("user") ?? ""),
      host,
      port: Number(parsed.port || parsed.searchParams.get("port") || 5432),
      database: decodeURIComponent(parsed.pathname.replace(/^\//, "")) || "postgres"
    }
  } catch {
    return { user: "", host: "(unparsable URL)", port: 0, database: "" }
  }
}

/** Where a URL points, for messages: `host:port`, or the Unix socket's folder. Never a password. */
export const whereOf = (url: Redacted.Redacted<string>): string => {
  const { host, port } = endpointOf(url)
  return host.startsWith("/") ? `the Unix socket in ${host} (port ${port})` : `${host}:${port}`
}

/** The embedded server (started or adopted) unless `DATABASE_URL` names a server. */
export const connectionTargetLayer: Layer.Layer<
  ConnectionTarget,
  Layer.Layer.Error<typeof Embedded.layer>,
  DbSettings
> = Layer.unwrapEffect(
  Effect.map(DbSettings, (settings) =>
    Option.match(settings.databaseUrl, {
      onSome: (mainUrl) => {
        const directUrl = Option.getOrElse(settings.directDatabaseUrl, () => mainUrl)
        return Layer.succeed(ConnectionTarget, {
          mainUrl,
          directUrl,
          location: { _tag: "External", main: endpointOf(mainUrl), direct: endpointOf(directUrl) }
        })
      },
      onNone: () =>
        Layer.effect(
          ConnectionTarget,
          Effect.map(Embedded.EmbeddedServer, (server) => ({
            mainUrl: server.url,
            directUrl: server.url,
            location: {
              _tag: "Embedded" as const,
              home: server.paths.home,
              socketDir: server.paths.socketDir,
              serverPid: server.serverPid,
              adopted: server.adopted,
              startedBy: server.startedBy
            }
          }))
        ).pipe(Layer.provide(Embedded.layer))
    })
  )
)

export interface PoolOptions {
  readonly role: PoolRole
  readonly url: Redacted.Redacted<string>
  readonly maxConnections: number
  /** How long a query may wait for a free connection before failing (transient). */
  readonly acquireTimeout?: Duration.DurationInput
}

/**
 * One pool, connected (with the transient retry) before it is handed out. The
 * connectivity check is interruptible, so a signal during a hung connect stops
 * at once instead of waiting out the timeout.
 */
export const makePool = (options: PoolOptions) =>
  Effect.gen(function* () {
    const applicationName = `tidemark:${options.role}`
    const acquireTimeout = Duration.decode(
      options.acquireTimeout ?? (options.role === "direct" ? "5 seconds" : "15 seconds")
    )
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new pg.Pool({
          connectionString: Redacted.value(options.url),
          max: options.maxConnections,
          application_name: applicationName,
          connectionTimeoutMillis: Duration.toMillis(acquireTimeout),
          idleTimeoutMillis: 30_000,
          keepAlive: true
        })
        // An idle connection dropped by a server restart must not crash the process;
        // the next query on it fails, is classified transient and retried.
        pool.on("error", () => undefined)
        return pool
      }),
      (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeout("1 second"), Effect.ignore)
    )
    yield* Effect.tryPromise({
      try: () => pool.query("SELECT 1"),
      catch: (cause) => new SqlError({ cause, message: `cannot connect (${applicationName})` })
    }).pipe(retryTransient(connectRetryPolicy, `${whereOf(options.url)} (${options.role} pool)`))
    const sql = yield* PgClient.fromPool({ acquire: Effect.succeed(pool), applicationName }).pipe(
      Effect.provide(Reactivity.layer)
    )
    return { role: options.role, sql, maxConnections: options.maxConnections, applicationName } satisfies DbPool
  })

/** Both pools, sized by the settings, against the resolved target: main first, so an outage is reported once. */
export const poolsLayer: Layer.Layer<MainDb | DirectDb, SqlError, ConnectionTarget | DbSettings> = Layer.provideMerge(
  Layer.scoped(
    DirectDb,
    Effect.flatMap(Effect.all([ConnectionTarget, DbSettings]), ([target, settings]) =>
      makePool({ role: "direct", url: target.directUrl, maxConnections: settings.directPoolSize })
    )
  ),
  Layer.scoped(
    MainDb,
    Effect.flatMap(Effect.all([ConnectionTarget, DbSettings]), ([target, settings]) =>
      makePool({ role: "main", url: target.mainUrl, maxConnections: settings.mainPoolSize })
    )
  )
)

/**
 * Runs `self` as if no transaction were open. `@effect/sql` keeps the open
 * transaction in the fiber's context and every client uses it, so without this
 * a DirectDb write inside a MainDb transaction would silently join (and roll
 * back with) the bulk transaction.
 */
export const outsideTransaction = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.mapInputContext(
    self,
    (context: Context.Context<R>) => Context.omit(SqlClient.TransactionConnection)(context) as Context.Context<R>
  )

/** Runs `f` on the direct pool, outside any caller's transaction. */
export const onDirect = <A, E, R>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E, R>) =>
  outsideTransaction(Effect.flatMap(DirectDb, (db) => f(db.sql)))

/**
 * `sql.withTransaction`, with a failure at COMMIT (which `@effect/sql` raises
 * as a defect) turned back into a typed `SqlError`, so it can be classified and
 * retried like any other.
 */
export const transaction =
  (sql: SqlClient.SqlClient) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
    sql
      .withTransaction(self)
      .pipe(Effect.catchAllDefect((defect) => (defect instanceof SqlError ? Effect.fail(defect) : Effect.die(defect))))

/** Everything a command needs: settings resolved to a target, both pools. */
export const layer = poolsLayer.pipe(Layer.provideMerge(connectionTargetLayer))
