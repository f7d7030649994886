/**
 * A folder as a source. The plan walks it (never following a symlink, so
 * nothing outside the root is reached), filtered by include/exclude globs;
 * an item's plan version is its size and mtime, so an unchanged file is
 * recognised without being read. A version is only trusted if the file's
 * mtime is at least `racyWindow` older than the moment it was read: a file
 * modified within the same mtime tick could change again without its mtime
 * changing, so such a version is stored marked and the file is read again
 * next time. Folders that cannot be listed are reported, and nothing under
 * them may be deleted.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Clock, Effect, Stream } from "effect"
import { ItemProblem, type PlannedItem, type ReadItem, type Source } from "./Source.js"
import { defaultExclude, defaultInclude, matcher } from "./globs.js"
import { decodeText, tooLarge } from "./text.js"

export interface DirOptions {
  readonly include: ReadonlyArray<string>
  readonly exclude: ReadonlyArray<string>
  readonly maxBytes: number
}

export const defaultDirOptions: DirOptions = {
  include: defaultInclude,
  exclude: [".git/**", "**/.git/**", ...defaultExclude],
  maxBytes: 10 * 1024 * 1024
}

/** Covers filesystems whose mtime ticks are coarse (2 s on FAT). */
const racyWindowMicros = 2_000_000n

const errorText = (cause: unknown) => {
  const error = cause as NodeJS.ErrnoException
  return error.code === "EACCES" || error.code === "EPERM"
    ? "permission denied"
    : error.code === "ENOENT"
      ? "deleted while syncing"
      : (error.message ?? String(cause))
}

const versionOf = (size: bigint, mtimeNs: bigint) => `${size}:${mtimeNs / 1000n}`

export const make = (root: string, options: DirOptions = defaultDirOptions): Source => {
  const absoluteRoot = path.resolve(root)
  const included = matcher(options.include)
  const excluded = matcher(options.exclude)
  const unlisted: Array<string> = []

  // Synchronous file system calls: each is a few microseconds, where the promise
  // API costs a thread-pool round trip per call (several per file). The walk is a
  // lazy generator, pulled in chunks, so the event loop still turns between them.
  function* walk(dir: string, prefix: string): Generator<PlannedItem | ItemProblem> {
    let entries: Array<fs.Dirent>
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch (cause) {
      unlisted.push(prefix)
      yield new ItemProblem({ key: prefix === "" ? "." : prefix, reason: `folder not readable: ${errorText(cause)}` })
      return
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : 1))
    for (const entry of entries) {
      const key = `${prefix}${entry.name}`
      if (entry.isSymbolicLink()) continue
      if (entry.isDirectory()) {
        if (excluded(`${key}/`) || excluded(key)) continue
        yield* walk(path.join(dir, entry.name), `${key}/`)
      } else if (entry.isFile() && included(key) && !excluded(key)) {
        try {
          const stat = fs.lstatSync(path.join(dir, entry.name), { bigint: true })
          yield { key, version: versionOf(stat.size, stat.mtimeNs) }
        } catch (cause) {
          yield new ItemProblem({ key, reason: errorText(cause) })
        }
      }
    }
  }

  const read = (item: PlannedItem): Effect.Effect<ReadItem, ItemProblem> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.try({
        try: () => readNow(item, BigInt(now) * 1000n),
        catch: (cause) =>
          cause instanceof ItemProblem ? cause : new ItemProblem({ key: item.key, reason: errorText(cause) })
      })
    )

  // One descriptor, opened without following a symlink (a file swapped for a link
  // since the plan is refused, never followed out of the root), stat-ed and read
  // through: the version then describes exactly the bytes read.
  const readNow = (item: PlannedItem, readAtMicros: bigint): ReadItem => {
    const file = path.join(absoluteRoot, ...item.key.split("/"))
    const problem = (reason: string) => new ItemProblem({ key: item.key, reason })
    let fd: number
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
    } catch (cause) {
      throw (cause as NodeJS.ErrnoException).code === "ELOOP" ? problem("became a symlink (not followed)") : cause
    }
    let stat: fs.BigIntStats
    let bytes: Buffer
    try {
      stat = fs.fstatSync(fd, { bigint: true })
      if (!stat.isFile()) throw problem("no longer a regular file")
      if (stat.size > BigInt(options.maxBytes)) throw tooLarge(item.key, options.maxBytes, stat.size)
      bytes = Buffer.allocUnsafe(Number(stat.size))
      let filled = 0
      while (filled < bytes.length) {
        const n = fs.readSync(fd, bytes, filled, bytes.length - filled, filled)
        if (n === 0) break
        filled += n
      }
      bytes = bytes.subarray(0, filled)
    } finally {
      fs.closeSync(fd)
    }
    const content = decodeText(item.key, bytes)
    if (content instanceof ItemProblem) throw content
    const version = versionOf(stat.size, stat.mtimeNs)
    return {
      key: item.key,
      content,
      size: bytes.length,
      mtime: new Date(Number(stat.mtimeMs)),
      contentHash: createHash("sha256").update(bytes).digest("hex"),
      version: stat.mtimeNs / 1000n + racyWindowMicros > readAtMicros ? `${version}:racy` : version
    }
  }

  return {
    kind: "dir",
    root: absoluteRoot,
    // A folder has no history to pin: every op goes to what is there now.
    target: () => Effect.succeed({}),
    // A fresh walk each time the plan runs (a resumed sync plans again).
    plan: () =>
      Effect.succeed({
        _tag: "Complete",
        items: Stream.suspend(() => {
          unlisted.length = 0
          return Stream.fromIterable({ [Symbol.iterator]: () => walk(absoluteRoot, "") })
        }),
        unlisted: Effect.sync(() => [...unlisted])
      }),
    read,
    watermark: () => ({ kind: "dir" })
  } satisfies Source
}
