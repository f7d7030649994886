/**
 * The layout of an embedded server's home folder. Pure: the same home always
 * gives the same paths, so every process that shares a home agrees on them.
 */
import { createHash } from "node:crypto"
import * as os from "node:os"
import * as path from "node:path"

export const serverPort = 5432
export const databaseName = "tidemark"
export const superuser = "tidemark"

/** `sun_path` holds 108 bytes on Linux and 104 on macOS, NUL included. */
const maxSocketPathBytes = 100

export interface EmbeddedPaths {
  readonly home: string
  readonly dataDir: string
  readonly socketDir: string
  readonly logFile: string
  /** One file per tidemark process attached to the server. */
  readonly clientsDir: string
  /** Names the cross-process lifecycle lock (see LifecycleLock). */
  readonly lockKey: string
}

const socketFile = (dir: string) => path.join(dir, `.s.PGSQL.${serverPort}`)

export const embeddedPaths = (home: string): EmbeddedPaths => {
  const resolved = path.resolve(home)
  const lockKey = createHash("sha256").update(resolved).digest("hex").slice(0, 16)
  const preferredSocketDir = path.join(resolved, "run")
  const socketDir =
    Buffer.byteLength(socketFile(preferredSocketDir)) <= maxSocketPathBytes
      ? preferredSocketDir
      : path.join(os.tmpdir(), `tidemark-${lockKey}`)
  return {
    home: resolved,
    dataDir: path.join(resolved, "pgdata"),
    socketDir,
    logFile: path.join(resolved, "log", "postgresql.log"),
    clientsDir: path.join(resolved, "clients"),
    lockKey
  }
}

/** A libpq-style URL that reaches the server over its Unix socket only. */
export const socketUrl = (paths: EmbeddedPaths, database: string = databaseName): string =>
  `postgresql://${superuser}@localhost/${encodeURIComponent(database)}?host=${encodeURIComponent(paths.socketDir)}&port=${serverPort}`
