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
  /** Who started the running server, and how it listens (see Ownership). */
  readonly ownerFile: string
  /** The generated password of the loopback TCP port (mode 0600). */
  readonly passwordFile: string
  /** A libpq password file for the TCP URL (mode 0600). */
  readonly passFile: string
}

/** The socket file's path at the longest port number (`db start --port` may choose one). */
const socketFile = (dir: string) => path.join(dir, ".s.PGSQL.65535")

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
    lockKey,
    ownerFile: path.join(resolved, "server.json"),
    passwordFile: path.join(resolved, "password"),
    passFile: path.join(resolved, "pgpass")
  }
}

/** A libpq-style URL that reaches the server over its Unix socket only. */
export const socketUrl = (paths: EmbeddedPaths, database: string = databaseName, port: number = serverPort): string =>
  `postgresql://${superuser}@localhost/${encodeURIComponent(database)}?host=${encodeURIComponent(paths.socketDir)}&port=${port}`
