/**
 * A folder as a source. The plan walks it (never following a symlink, so
 * nothing outside the root is reached), filtered by include/exclude globs;
 * an item's plan version is its size and mtime, so an unchanged file is
 * recognised without being read. It is looked up (one `lstat`) only when first
 * asked for: a file with nothing stored to compare it with, as in a first
 * import, needs none. A version is only trusted if the file's
 * mtime is at least `racyWindow` older than the moment it was read: a file
 * modified within the same mtime tick could change again without its mtime
 * changing, so such a version is stored marked (with its content hash,
 * `racyVersion`) and the file is read again next time: unchanged content
 * makes it a re-check, not an import. Folders that cannot be listed are reported, and nothing under
 * them may be deleted. Files are read, and from a plan's second batch on their
 * versions looked up, on a thread of their own (FileReader), while the walk goes
 * on; it is stopped with the source's scope.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Clock, Effect, Scope, Stream } from "effect"
import * as FileReader from "./FileReader.js"
import { racyVersion } from "./racyVersion.js"
import { ItemProblem, type PlannedItem, type ReadItem, type Source, SourceUnavailable } from "./Source.js"
import { defaultExclude, defaultInclude, matcher } from "./globs.js"
import { binaryReason, notUtf8Reason, tooLarge } from "./text.js"

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
const racyWindowMicros = 2_000_000

const errorText = (cause: { readonly code?: string | undefined; readonly message?: string }) =>
  cause.code === "EACCES" || cause.code === "EPERM"
    ? "permission denied"
    : cause.code === "ENOENT"
      ? "deleted while syncing"
      : (cause.message ?? String(cause))

const versionOf = (size: bigint, mtimeNs: bigint) => `${size}:${mtimeNs / 1000n}`

/** The version of a file that could not be looked up: equal to none stored, so the file is read and the read says why. */
const unknownVersion = "unknown"

/** The version of the file at `key` under `root`, looked up now. */
const lookUpVersion = (root: string, key: string) => {
  try {
    const stat = fs.lstatSync(path.join(root, key), { bigint: true })
    return versionOf(stat.size, stat.mtimeNs)
  } catch {
    return unknownVersion
  }
}

export const make = Effect.fn("DirSource.make")(function* (root: string, options: DirOptions = defaultDirOptions) {
  const absoluteRoot = path.resolve(root)
  const scope = yield* Effect.scope
  // The reading thread starts when first needed (it takes ~50 ms to boot): for a plan's
  // second batch of versions to look up (stored items to compare with), or as soon as the
  // plan finds something to read. A first import's plan looks nothing up.
  const reader = yield* Effect.cached(Scope.extend(FileReader.make, scope))
  const included = matcher(options.include)
  const excluded = matcher(options.exclude)
  const unlisted: Array<string> = []

  /**
   * A file the walk found; its version is looked up when first asked for. The
   * root is the source's, not a field: a sync holds one of these per file.
   */
  class ListedFile implements PlannedItem {
    looked: string | undefined
    constructor(readonly key: string) {}

    get version(): string {
      this.looked ??= lookUpVersion(absoluteRoot, this.key)
      return this.looked
    }
  }

  // The first batch of a plan is looked up here: a tree of one batch never starts the thread.
  let batchesLookedUp = 0
  const lookUpVersions = (items: ReadonlyArray<PlannedItem>) =>
    Effect.gen(function* () {
      const files = items.filter((item): item is ListedFile => item instanceof ListedFile && item.looked === undefined)
      if (batchesLookedUp++ === 0 || files.length === 0) return
      const versions = yield* Effect.flatMap(reader, (thread) =>
        thread.versions(
          absoluteRoot,
          files.map((file) => file.key)
        )
      )
      files.forEach((file, i) => (file.looked = versions[i]))
    }).pipe(
      // A thread that failed: each version is looked up here when asked for.
      Effect.catchTag("FileReaderFailed", () => Effect.void)
    )

  // Synchronous file system calls: each is a few microseconds, where the promise
  // API costs a thread-pool round trip per call (several per file). The walk is a
  // lazy generator, pulled in chunks, so the event loop still turns between them.
  function* walk(dir: string, prefix: string): Generator<PlannedItem | ItemProblem> {
    let entries: Array<fs.Dirent>
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch (cause) {
      unlisted.push(prefix)
      const reason = `folder not readable: ${errorText(cause as NodeJS.ErrnoException)}`
      yield new ItemProblem({ key: prefix === "" ? "." : prefix, reason })
      return
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : 1))
    // The folder's listing is kept as keys only, folders marked by their trailing
    // slash: the walk pauses while the sync looks its files up, and whatever it
    // holds then outlives the young generation (the entries themselves came to
    // ~80 MB of old-generation garbage per 1,000,000 files).
    const keys: Array<string> = []
    for (const entry of entries) {
      const key = `${prefix}${entry.name}`
      if (entry.isDirectory() && !entry.isSymbolicLink()) {
        if (!excluded(`${key}/`) && !excluded(key)) keys.push(`${key}/`)
      } else if (entry.isFile() && included(key) && !excluded(key)) {
        keys.push(key)
      }
    }
    entries.length = 0
    for (const key of keys) {
      if (key.endsWith("/")) yield* walk(path.join(dir, key.slice(prefix.length, -1)), key)
      else yield new ListedFile(key)
    }
  }

  /** What was read of `item`, or why it cannot be imported; `readAtMicros`: when the batch was asked for. */
  const readItem = (
    item: PlannedItem,
    answer: FileReader.FileAnswer,
    bytes: Buffer,
    readAtMicros: number
  ): ReadItem | ItemProblem => {
    const problem = (reason: string) => new ItemProblem({ key: item.key, reason })
    if ("problem" in answer) {
      switch (answer.problem) {
        case "symlink":
          return problem("became a symlink (not followed)")
        case "notFile":
          return problem("no longer a regular file")
        case "tooLarge":
          return tooLarge(item.key, options.maxBytes, answer.size)
        case "binary":
          return problem(binaryReason)
        case "notUtf8":
          return problem(notUtf8Reason)
        case "errno":
          return problem(errorText(answer))
      }
    }
    const version = `${answer.size}:${answer.mtimeMicros}`
    return {
      key: item.key,
      content: bytes.subarray(answer.at, answer.at + answer.size),
      size: answer.size,
      // Truncated toward zero, as the version's microseconds are.
      mtime: new Date(Math.trunc(answer.mtimeMicros / 1000)),
      contentHash: answer.hash,
      // The batch was asked for before any file was read: an early `readAt` marks more, never fewer.
      version: answer.mtimeMicros + racyWindowMicros > readAtMicros ? racyVersion(version, answer.hash) : version
    }
  }

  const read = (items: ReadonlyArray<PlannedItem>) =>
    Effect.gen(function* () {
      const files = yield* reader
      const readAtMicros = (yield* Clock.currentTimeMillis) * 1000
      const batch = yield* files.read(
        absoluteRoot,
        items.map((item) => item.key),
        options.maxBytes
      )
      return items.map((item, i) => readItem(item, batch.answers[i]!, batch.bytes, readAtMicros))
    }).pipe(
      Effect.catchTag("FileReaderFailed", (failure) =>
        Effect.fail(new SourceUnavailable({ root: absoluteRoot, reason: failure.reason }))
      )
    )

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
          batchesLookedUp = 0
          // Small chunks: between two, the sync may let the event loop turn (a chunk that
          // lists many folders the page cache has dropped is one long synchronous step).
          return Stream.fromIteratorSucceed(walk(absoluteRoot, ""), 256)
        }),
        unlisted: Effect.sync(() => [...unlisted])
      }),
    prepareRead: Effect.asVoid(reader),
    lookUpVersions,
    read,
    watermark: () => ({ kind: "dir" })
  } satisfies Source
})
