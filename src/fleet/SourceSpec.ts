/**
 * What `tidemark source add` records of a source: everything a worker on any
 * machine needs to sync it the way `tidemark sync` would, as JSON in the
 * database. A folder or JSONL location is an absolute path the workers must
 * all see (a shared mount); a git location is a path or a URL, which every
 * worker mirrors in its own home.
 */
import * as path from "node:path"
import { Either, Schema } from "effect"

export const SourceKind = Schema.Literal("dir", "git", "jsonl")
export type SourceKind = typeof SourceKind.Type

export const SourceSpec = Schema.Struct({
  kind: SourceKind,
  /** An absolute path, or (git only) an `https://`, `ssh://` or `file://` URL. */
  location: Schema.String,
  include: Schema.Array(Schema.String),
  exclude: Schema.Array(Schema.String),
  maxSizeMb: Schema.Int,
  concurrency: Schema.Int,
  allowMassChange: Schema.Boolean,
  /** Git: the branch, tag or commit (default HEAD). */
  ref: Schema.optional(Schema.String),
  /** JSONL: the entries' identity and message fields, dotted paths. */
  idField: Schema.optional(Schema.String),
  messageField: Schema.optional(Schema.String),
  /** JSONL: delete the entries of a file that is gone. */
  mirror: Schema.optional(Schema.Boolean),
  searchConfig: Schema.optional(Schema.String)
})
export type SourceSpec = typeof SourceSpec.Type

/** The spec as stored (a JSON object), and back: a row that does not decode names its source. */
export const encode = Schema.encodeSync(SourceSpec)
export const decode = Schema.decodeUnknownEither(SourceSpec)

const urlSchemes = ["https:", "http:", "ssh:", "file:", "git:"]

/** A git location given as a URL (a worker mirrors it), not a path. */
export const isUrl = (location: string): boolean => {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) return true
  // scp-like `user@host:path`, as git takes it.
  return /^[^/\s]+@[^/\s:]+:/.test(location)
}

/** Why a location cannot be recorded, or the location as workers will use it. */
export const normalizeLocation = (kind: SourceKind, location: string, cwd: string): Either.Either<string, string> => {
  if (isUrl(location)) {
    if (kind !== "git") return Either.left(`${location} is a URL: only a git source may be one (add --git)`)
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(location)?.[1]?.toLowerCase()
    if (scheme !== undefined && location.includes("://") && !urlSchemes.includes(`${scheme}:`)) {
      return Either.left(`${location}: git URLs start with https://, ssh:// or file://`)
    }
    return Either.right(location)
  }
  return Either.right(path.resolve(cwd, location))
}

/** `--every 5m` as the cron expression pg-boss schedules: intervals that divide an hour or a day evenly. */
export const cronOfEvery = (minutes: number): Either.Either<string, string> => {
  if (!Number.isInteger(minutes) || minutes < 1) return Either.left("--every takes whole minutes (at least 1m)")
  if (minutes < 60) {
    return 60 % minutes === 0
      ? Either.right(minutes === 1 ? "* * * * *" : `*/${minutes} * * * *`)
      : Either.left(`--every ${minutes}m does not divide an hour evenly (use 1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30m)`)
  }
  if (minutes % 60 !== 0) return Either.left(`--every ${minutes}m: above an hour, use whole hours`)
  const hours = minutes / 60
  if (hours === 24) return Either.right("0 0 * * *")
  return hours < 24 && 24 % hours === 0
    ? Either.right(hours === 1 ? "0 * * * *" : `0 */${hours} * * *`)
    : Either.left(`--every ${hours}h does not divide a day evenly (use 1, 2, 3, 4, 6, 8, 12 or 24h)`)
}
