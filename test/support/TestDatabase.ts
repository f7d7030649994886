/**
 * A fresh database per test file on the run's server, dropped afterwards,
 * and the layers that point tidemark at it.
 */
import { randomBytes } from "node:crypto"
import pg from "pg"
import { Effect, Layer, Option, Redacted } from "effect"
import { inject } from "vitest"
import * as Database from "../../src/db/Database.js"
import { DbSettings, defaultDirectPoolSize, defaultMainPoolSize } from "../../src/db/DbSettings.js"

export const adminUrl = (): string => inject("adminUrl")

export const withDatabaseName = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

const admin = async <A>(f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: adminUrl() })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

export const createDatabase = (label: string): Promise<string> => {
  const name = `t_${label.replace(/[^a-z0-9]/gi, "_").toLowerCase()}_${randomBytes(4).toString("hex")}`
  return admin((client) => client.query(`CREATE DATABASE ${name}`)).then(() => withDatabaseName(adminUrl(), name))
}

export const dropDatabase = (url: string): Promise<void> =>
  admin((client) => client.query(`DROP DATABASE IF EXISTS ${new URL(url).pathname.slice(1)} WITH (FORCE)`)).then(
    () => undefined
  )

/** A fresh database for the life of the layer; yields its URL. */
export const freshDatabase = (label: string) =>
  Effect.acquireRelease(
    Effect.promise(() => createDatabase(label)),
    (url) => Effect.promise(() => dropDatabase(url))
  )

export const settingsFor = (url: string, overrides: Partial<{ mainPoolSize: number; directPoolSize: number }> = {}) =>
  Layer.succeed(DbSettings, {
    databaseUrl: Option.some(Redacted.make(url)),
    directDatabaseUrl: Option.none(),
    home: "/nonexistent-tidemark-home",
    mainPoolSize: overrides.mainPoolSize ?? defaultMainPoolSize,
    directPoolSize: overrides.directPoolSize ?? defaultDirectPoolSize
  })

/** Settings, target and both pools on a database of its own. */
export const layer = (label: string, overrides: Parameters<typeof settingsFor>[1] = {}) =>
  Layer.unwrapScoped(
    Effect.map(freshDatabase(label), (url) => Database.layer.pipe(Layer.provideMerge(settingsFor(url, overrides))))
  )
