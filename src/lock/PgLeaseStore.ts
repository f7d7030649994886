/**
 * Leases in `tidemark.locks`. Grants, renewals and releases go through
 * DirectDb, outside any caller's transaction, so they never wait behind bulk
 * traffic in the main pool. The fence runs in the caller's MainDb transaction.
 * Tokens come from a sequence: they keep rising across releases.
 */
import { Duration, Effect, Layer, Option } from "effect"
import type * as SqlClient from "@effect/sql/SqlClient"
import { DirectDb, MainDb, outsideTransaction } from "../db/Database.js"
import { FencedOut } from "./errors.js"
import { LeaseStore, type LeaseRow } from "./LeaseStore.js"

interface RowRecord {
  readonly name: string
  readonly holder: string
  readonly host: string
  readonly pid: number
  readonly token: string
  readonly age_ms: number
  readonly heartbeat_age_ms: number
  readonly expires_in_ms: number
}

const rowColumns = `name, holder, host, pid, token,
  (extract(epoch FROM now() - acquired_at) * 1000)::float8 AS age_ms,
  (extract(epoch FROM now() - heartbeat_at) * 1000)::float8 AS heartbeat_age_ms,
  (extract(epoch FROM expires_at - now()) * 1000)::float8 AS expires_in_ms`

const toRow = (r: RowRecord): LeaseRow => ({
  name: r.name,
  holder: r.holder,
  host: r.host,
  pid: r.pid,
  token: Number(r.token),
  ageMillis: Math.max(0, r.age_ms),
  sinceHeartbeatMillis: Math.max(0, r.heartbeat_age_ms),
  expiresInMillis: r.expires_in_ms
})

export const layer = Layer.effect(
  LeaseStore,
  Effect.gen(function* () {
    const main = yield* MainDb
    const { sql: directSql } = yield* DirectDb
    const direct = <A, E>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) => outsideTransaction(f(directSql))

    const current = (name: string) =>
      direct((sql) => sql.unsafe<RowRecord>(`SELECT ${rowColumns} FROM tidemark.locks WHERE name = $1`, [name])).pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toRow))
      )

    const tryAcquire: LeaseStore["Type"]["tryAcquire"] = (name, holder, ttl) =>
      Effect.gen(function* () {
        // A row can vanish between the failed grant and the read (released meanwhile): try again.
        for (;;) {
          const granted = yield* direct(
            (sql) => sql<{ token: string }>`
              INSERT INTO tidemark.locks AS l (name, holder, host, pid, token, acquired_at, heartbeat_at, expires_at)
              VALUES (${name}, ${holder.holder}, ${holder.host}, ${holder.pid}, nextval('tidemark.lock_token_seq'),
                      now(), now(), now() + ${Duration.toMillis(ttl)} * interval '1 millisecond')
              ON CONFLICT (name) DO UPDATE
                SET holder = excluded.holder, host = excluded.host, pid = excluded.pid, token = excluded.token,
                    acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at,
                    expires_at = excluded.expires_at
                WHERE l.expires_at < now()
              RETURNING token`
          )
          if (granted[0] !== undefined) return { _tag: "Granted", token: Number(granted[0].token) } as const
          const held = yield* current(name)
          if (Option.isSome(held)) return { _tag: "Busy", current: held.value } as const
        }
      })

    const takeOver: LeaseStore["Type"]["takeOver"] = (name, from, holder, ttl) =>
      direct(
        (sql) => sql<{ token: string }>`
          UPDATE tidemark.locks
             SET holder = ${holder.holder}, host = ${holder.host}, pid = ${holder.pid},
                 token = nextval('tidemark.lock_token_seq'), acquired_at = now(), heartbeat_at = now(),
                 expires_at = now() + ${Duration.toMillis(ttl)} * interval '1 millisecond'
           WHERE name = ${name} AND holder = ${from.holder} AND token = ${from.token}
          RETURNING token`
      ).pipe(Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (row) => Number(row.token))))

    const renew: LeaseStore["Type"]["renew"] = (name, holder, token, ttl) =>
      direct(
        (sql) => sql`
          UPDATE tidemark.locks
             SET heartbeat_at = now(), expires_at = now() + ${Duration.toMillis(ttl)} * interval '1 millisecond'
           WHERE name = ${name} AND holder = ${holder} AND token = ${token}
          RETURNING token`
      ).pipe(
        Effect.flatMap((rows) =>
          rows.length === 1
            ? Effect.succeed("renewed" as const)
            : Effect.map(current(name), (held) =>
                Option.isSome(held) ? ("taken-over" as const) : ("released" as const)
              )
        )
      )

    const release: LeaseStore["Type"]["release"] = (name, holder, token) =>
      direct(
        (sql) =>
          sql`DELETE FROM tidemark.locks WHERE name = ${name} AND holder = ${holder} AND token = ${token} RETURNING token`
      ).pipe(Effect.map((rows) => rows.length === 1))

    const list = direct((sql) => sql.unsafe<RowRecord>(`SELECT ${rowColumns} FROM tidemark.locks ORDER BY name`)).pipe(
      Effect.map((rows) => rows.map(toRow))
    )

    const forceRelease: LeaseStore["Type"]["forceRelease"] = (name) =>
      direct((sql) =>
        sql.unsafe<RowRecord>(`DELETE FROM tidemark.locks WHERE name = $1 RETURNING ${rowColumns}`, [name])
      ).pipe(Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toRow)))

    const fence: LeaseStore["Type"]["fence"] = (name, token, idleBound) => {
      const bound = idleBound === undefined ? null : String(Math.max(1, Math.ceil(Duration.toMillis(idleBound))))
      // The bound is set by the fence's own statement (set_config(..., true) is SET LOCAL):
      // no extra round trip per write transaction.
      return main.sql<{ token: string }>`
        SELECT token, set_config('idle_in_transaction_session_timeout',
                                 coalesce(${bound}::text, current_setting('idle_in_transaction_session_timeout')), true)
          FROM tidemark.locks WHERE name = ${name} FOR SHARE`.pipe(
        Effect.flatMap((rows) => {
          const currentToken = rows[0] === undefined ? null : Number(rows[0].token)
          return currentToken === token ? Effect.void : Effect.fail(new FencedOut({ name, token, currentToken }))
        })
      )
    }

    return LeaseStore.of({ tryAcquire, takeOver, renew, release, list, find: current, forceRelease, fence })
  })
)
