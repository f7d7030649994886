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
import picomatch from "picomatch"
import { Clock, Effect, Stream } from "effect"
import { ItemProblem, type PlannedItem, type ReadItem, type Source } from "./Source.js"

export interface DirOptions {
  readonly include: ReadonlyArray<string>
  readonly exclude: ReadonlyArray<string>
  readonly maxBytes: number
}

export const defaultDirOptions: DirOptions = {
  include: ["**"],
  exclude: [".git/**", "**/.git/**", "node_modules/**", "**/node_modules/**"],
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

/** Glob matching that also works on names containing a newline (picomatch's `.` does not match one). */
const matcher = (globs: ReadonlyArray<string>) => {
  const patterns = globs.map((glob) => {
    const re = picomatch.makeRe(glob, { dot: true })
    return new RegExp(re.source, `${re.flags}s`)
  })
  return (key: string) => patterns.some((re) => re.test(key))
}

export const versionOf = (size: bigint, mtimeNs: bigint) => `${size}:${mtimeNs / 1000n}`

export const make = (root: string, options: DirOptions = defaultDirOptions): Source => {
  const absoluteRoot = path.resolve(root)
  const included = matcher(options.include)
  const excluded = matcher(options.exclude)
  const unlisted: Array<string> = []

  async function* walk(dir: string, prefix: string): AsyncGenerator<PlannedItem | ItemProblem> {
    let handle: fs.Dir
    try {
      handle = await fs.promises.opendir(dir)
    } catch (cause) {
      unlisted.push(prefix)
      yield new ItemProblem({ key: prefix === "" ? "." : prefix, reason: `folder not readable: ${errorText(cause)}` })
      return
    }
    const entries: Array<fs.Dirent> = []
    for await (const entry of handle) entries.push(entry)
    entries.sort((a, b) => (a.name < b.name ? -1 : 1))
    for (const entry of entries) {
      const key = `${prefix}${entry.name}`
      if (entry.isSymbolicLink()) continue
      if (entry.isDirectory()) {
        if (excluded(`${key}/`) || excluded(key)) continue
        yield* walk(path.join(dir, entry.name), `${key}/`)
      } else if (entry.isFile() && included(key) && !excluded(key)) {
        try {
          const stat = await fs.promises.lstat(path.join(dir, entry.name), { bigint: true })
          yield { key, version: versionOf(stat.size, stat.mtimeNs) }
        } catch (cause) {
          yield new ItemProblem({ key, reason: errorText(cause) })
        }
      }
    }
  }

  const read = (item: PlannedItem): Effect.Effect<ReadItem, ItemProblem> =>
    Effect.gen(function* () {
      const file = path.join(absoluteRoot, ...item.key.split("/"))
      const problem = (reason: string) => new ItemProblem({ key: item.key, reason })
      const stat = yield* Effect.tryPromise({
        try: () => fs.promises.lstat(file, { bigint: true }),
        catch: (cause) => problem(errorText(cause))
      })
      if (!stat.isFile()) return yield* problem("no longer a regular file")
      if (stat.size > BigInt(options.maxBytes)) {
        return yield* problem(
          `larger than the ${Math.round(options.maxBytes / 1024 / 1024)} MiB limit (${stat.size} bytes)`
        )
      }
      const bytes = yield* Effect.tryPromise({
        try: () => fs.promises.readFile(file),
        catch: (cause) => problem(errorText(cause))
      })
      if (bytes.includes(0)) return yield* problem("binary file (contains NUL bytes)")
      const content = yield* Effect.try({
        try: () => new TextDecoder("utf-8", { fatal: true }).decode(bytes),
        catch: () => problem("not valid UTF-8 text")
      })
      const readAtMicros = BigInt(yield* Clock.currentTimeMillis) * 1000n
      const mtimeMicros = stat.mtimeNs / 1000n
      const version = versionOf(stat.size, stat.mtimeNs)
      return {
        key: item.key,
        content,
        size: bytes.length,
        mtime: new Date(Number(stat.mtimeMs)),
        contentHash: createHash("sha256").update(bytes).digest("hex"),
        version: mtimeMicros + racyWindowMicros > readAtMicros ? `${version}:racy` : version
      }
    })

  return {
    kind: "dir",
    root: absoluteRoot,
    // A fresh walk each time the plan runs (a resumed sync plans again).
    plan: Stream.suspend(() => {
      unlisted.length = 0
      return Stream.fromAsyncIterable(walk(absoluteRoot, ""), (cause) => cause).pipe(Stream.orDie)
    }),
    unlisted: Effect.sync(() => [...unlisted]),
    read
  } satisfies Source
}
