/**
 * Schema migrations: `migrations/NNNN_name.sql`, applied in order, each in its
 * own transaction together with its record in `tidemark.schema_migrations`.
 *
 * Every transaction first takes a transaction-scoped advisory lock, so two
 * processes migrating the same fresh database queue up instead of colliding
 * (two concurrent `CREATE TABLE IF NOT EXISTS` can both fail on a fresh
 * database), and each re-reads what is applied after it gets the lock.
 * Migrations go through DirectDb: a session connection, never a pooler.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Data, Effect } from "effect"
import { packageRoot } from "../packageRoot.js"
import { onDirect, transaction } from "./Database.js"
import { retryTransient } from "./Transient.js"

export interface Migration {
  readonly id: number
  readonly name: string
  readonly sql: string
  readonly checksum: string
}

export interface AppliedMigration {
  readonly id: number
  readonly name: string
  readonly checksum: string
  readonly appliedAt: Date
}

export class MigrationError extends Data.TaggedError("MigrationError")<{
  readonly migration: string
  readonly reason: string
  /** The driver's error, kept so that a dropped connection is still classified transient. */
  readonly cause?: unknown
}> {
  override get message() {
    return `migration ${this.migration}: ${this.reason}`
  }
}

export const defaultMigrationsDir = path.join(packageRoot, "migrations")

/** Arbitrary, fixed: the advisory lock key every tidemark migrator agrees on ("tide"). */
const advisoryLockKey = 0x74696465

const fileName = /^(\d{4})_([a-z0-9_]+)\.sql$/

const describe = (m: { readonly id: number; readonly name: string }) => `${String(m.id).padStart(4, "0")}_${m.name}`

interface MigrationFile {
  readonly id: number
  readonly name: string
  readonly file: string
}

/**
 * The migrations there are, by file name only (in order; nothing is read): a
 * badly named file or two files of one number are refused.
 */
export const listMigrations = (
  dir: string = defaultMigrationsDir
): Effect.Effect<ReadonlyArray<MigrationFile>, MigrationError> =>
  Effect.try({
    try: () => {
      const files = fs
        .readdirSync(dir)
        .filter((entry) => entry.endsWith(".sql"))
        .map((entry): MigrationFile => {
          const match = fileName.exec(entry)
          if (match === null)
            throw new MigrationError({ migration: entry, reason: "file name must look like 0001_name.sql" })
          return { id: Number(match[1]), name: match[2]!, file: path.join(dir, entry) }
        })
        .sort((a, b) => a.id - b.id)
      files.forEach((m, index) => {
        if (index > 0 && files[index - 1]!.id === m.id) {
          throw new MigrationError({ migration: describe(m), reason: "two migrations share this number" })
        }
      })
      return files
    },
    catch: (cause) =>
      cause instanceof MigrationError
        ? cause
        : new MigrationError({ migration: dir, reason: `cannot read migrations: ${String(cause)}` })
  })

/** The migrations there are, read and hashed. */
export const loadMigrations = (
  dir: string = defaultMigrationsDir
): Effect.Effect<ReadonlyArray<Migration>, MigrationError> =>
  Effect.flatMap(listMigrations(dir), (files) =>
    Effect.try({
      try: () =>
        files.map(({ id, name, file }): Migration => {
          const sql = fs.readFileSync(file, "utf8")
          return { id, name, sql, checksum: createHash("sha256").update(sql).digest("hex") }
        }),
      catch: (cause) => new MigrationError({ migration: dir, reason: `cannot read migrations: ${String(cause)}` })
    })
  )

const lock = (sql: SqlClient.SqlClient) => sql`SELECT pg_advisory_xact_lock(${advisoryLockKey})`

const readApplied = (sql: SqlClient.SqlClient) =>
  sql<{ id: number; name: string; checksum: string; applied_at: Date }>`
    SELECT id, name, checksum, applied_at FROM tidemark.schema_migrations ORDER BY id
  `.pipe(
    Effect.map((rows) =>
      rows.map((row): AppliedMigration => ({
        id: row.id,
        name: row.name,
        checksum: row.checksum,
        appliedAt: row.applied_at
      }))
    )
  )

/** The applied migrations, none if the ledger does not exist yet. */
const appliedSoFar = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const [ledger] = yield* sql<{
      exists: boolean
    }>`SELECT to_regclass('tidemark.schema_migrations') IS NOT NULL AS exists`
    return ledger?.exists === true ? yield* readApplied(sql) : []
  })

const ensureLedger = (sql: SqlClient.SqlClient) =>
  transaction(sql)(
    Effect.gen(function* () {
      yield* lock(sql)
      yield* sql`CREATE SCHEMA IF NOT EXISTS tidemark`
      yield* sql`
        CREATE TABLE IF NOT EXISTS tidemark.schema_migrations (
          id integer PRIMARY KEY,
          name text NOT NULL,
          checksum text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`
    })
  )

const checkUnchanged = (known: ReadonlyArray<Migration>, applied: ReadonlyArray<AppliedMigration>) =>
  Effect.forEach(applied, (row) => {
    const file = known.find((m) => m.id === row.id)
    return file !== undefined && file.checksum !== row.checksum
      ? Effect.fail(
          new MigrationError({
            migration: describe(row),
            reason: "the file changed after it was applied; add a new migration instead of editing an applied one"
          })
        )
      : Effect.void
  })

/** Applies one migration unless another process did while we waited for the lock. */
const applyOne = (sql: SqlClient.SqlClient, migration: Migration) =>
  transaction(sql)(
    Effect.gen(function* () {
      yield* lock(sql)
      const applied = yield* readApplied(sql)
      if (applied.some((row) => row.id === migration.id)) return false
      yield* sql
        .unsafe(migration.sql)
        .pipe(
          Effect.mapError(
            (error) => new MigrationError({ migration: describe(migration), reason: messageOf(error), cause: error })
          )
        )
      yield* sql`
        INSERT INTO tidemark.schema_migrations (id, name, checksum)
        VALUES (${migration.id}, ${migration.name}, ${migration.checksum})`
      return true
    })
  ).pipe(retryTransient())

const messageOf = (error: SqlError): string => {
  const cause = error.cause as { message?: unknown } | undefined
  return typeof cause?.message === "string" ? cause.message : error.message
}

export interface MigrationStatus {
  readonly applied: ReadonlyArray<AppliedMigration>
  readonly pending: ReadonlyArray<Migration>
}

/** Applies every pending migration; returns the ones this call applied. */
export const migrate = Effect.fn("tidemark.migrate")(function* (dir: string = defaultMigrationsDir) {
  const known = yield* loadMigrations(dir)
  return yield* onDirect((sql) =>
    Effect.gen(function* () {
      // Every command migrates first, and there is usually nothing to do: two reads, no lock.
      const applied = yield* appliedSoFar(sql).pipe(retryTransient())
      yield* checkUnchanged(known, applied)
      if (known.every((migration) => applied.some((row) => row.id === migration.id))) return []
      yield* ensureLedger(sql).pipe(retryTransient())
      const appliedNow: Array<Migration> = []
      for (const migration of known) {
        if (yield* applyOne(sql, migration)) {
          appliedNow.push(migration)
          yield* Effect.logInfo(`applied migration ${describe(migration)}`)
        }
      }
      return appliedNow
    })
  )
})

/** What is applied and what is pending, without changing anything. */
export const status = Effect.fn("tidemark.migrationStatus")(function* (dir: string = defaultMigrationsDir) {
  const known = yield* loadMigrations(dir)
  const applied = yield* onDirect(appliedSoFar)
  return {
    applied,
    pending: known.filter((m) => !applied.some((row) => row.id === m.id))
  } satisfies MigrationStatus
})

export { describe as migrationName }
