/**
 * Bringing one JSONL file's stream up to date, by the cheapest path its
 * checkpoint allows:
 *
 *   new        a stream seen for the first time: every line is imported.
 *   tail       the file grew and its anchor (the last message before the
 *              processed offset) is still there, byte for byte: only the
 *              tail is parsed. The few entries between the anchor and the
 *              offset (metadata, typically) are compared as they pass: they
 *              never defeat this path unless they changed.
 *   reconcile  anything else (shrunk, rewritten, truncated and regrown, anchor
 *              gone): the file's entries are aligned with the stored ones
 *              (`Align`), only what the alignment shows as new is imported,
 *              and stored entries no longer in the file are marked so — at
 *              most the flood cap per pass.
 *
 * Each batch of entries is written with the stream's new checkpoint in one
 * fenced step (the writer's), so what is stored and where the file was read up
 * to never disagree. A last line without its newline is a write in progress:
 * it is left for the next sync. A line that is not valid JSON, or too long, is
 * an item error naming the file and line; the lines after it go on.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect } from "effect"
import type { StoreError } from "../../db/StoreError.js"
import type { FencedOut } from "../../lock/errors.js"
import type {
  Anchor,
  Checkpoint,
  NewEntry,
  PathTaken,
  StoredEntry,
  Stream,
  StreamWrite
} from "../../entries/EntriesStore.js"
import type { ItemErrorRow } from "../../quarantine/ItemErrorStore.js"
import { alignByHash } from "./Align.js"
import { type EntryFields, hashLine, parseLine } from "./Entry.js"
import type { ListedFile } from "./JsonlFiles.js"
import { readAt, type RawLine, scan } from "./Lines.js"

/** Entries per write (and about as many bytes of JSON as `batchBytes`). */
const batchEntries = 2000
const batchBytes = 8 * 1024 * 1024
/** Covers filesystems whose mtime ticks are coarse (2 s on FAT), as for folders. */
const racyWindowUs = 2_000_000

export interface FileReport {
  readonly path: string
  readonly stream: number | null
  readonly took: PathTaken
  /** The path it was found under at the last sync, when it moved (rotation). */
  readonly movedFrom?: string
  readonly imported: number
  /** Stored entries found no longer in the file. */
  readonly absent: number
  /** New entries left for later syncs by the flood cap. */
  readonly backlog: number
  readonly pendingTail: boolean
  readonly errors: number
  readonly bytesRead: number
}

/** What a writer may fail with: a refused fence, the stores' own errors. */
export type WriterError = FencedOut | SqlError | StoreError

/** Where a file's writes and errors go: the store under the lease (a real sync), or nowhere (a dry run). */
export interface FileWriter {
  readonly write: (write: StreamWrite) => Effect.Effect<number, WriterError>
  /** The stream's entries present in its file, in file order. */
  readonly present: (stream: number) => Effect.Effect<ReadonlyArray<StoredEntry>, WriterError>
  /** Records this file's line errors and clears its others (`clearOthers`: a whole-file pass). */
  readonly errors: (errors: ReadonlyArray<ItemErrorRow>, clearOthers: boolean) => Effect.Effect<void, WriterError>
  readonly imported: (entries: number, bytes: number) => Effect.Effect<void>
}

export interface FileContext {
  readonly fields: EntryFields
  readonly maxLineBytes: number
  readonly allowMassChange: boolean
  readonly writer: FileWriter
}

/** The flood cap: how many new entries a reconcile may import in one pass into a file of `stored` entries. */
export const floodCap = (stored: number) => Math.max(Math.floor(stored * 0.2), 50)

const errorKey = (path: string, number: number) => `${path}:${number + 1}`

const lineError = (path: string, line: RawLine, reason: string): ItemErrorRow => ({
  key: errorKey(path, line.number),
  version: null,
  error: `line ${line.number + 1}: ${reason}`
})

/** What a scan keeps of each line for a reconcile: no content, only what the alignment needs. */
interface LineFacts {
  readonly number: number
  readonly offset: number
  readonly length: number
  readonly hash: string
  readonly id: string | null
  readonly kind: "message" | "metadata"
}

const identityOf = (id: string | null, seq: number) => (id === null ? `#${seq}` : `id:${id}`)

/**
 * The file's first complete line as `sha256:length` (null while it has none),
 * and the bytes read for it. `expected`: the stored fingerprint's length, when
 * there is one: then exactly that line is read.
 */
export const fingerprintOf = (path: string, fd: number, maxLineBytes: number, expectedLength?: number) =>
  Effect.gen(function* () {
    let length = expectedLength === undefined ? 4096 : expectedLength + 1
    let read = 0
    for (;;) {
      const bytes = yield* readAt(path, fd, 0, length)
      read += bytes.length
      const newline = bytes.indexOf(10)
      if (newline >= 0) return { fingerprint: `${hashLine(bytes.subarray(0, newline))}:${newline}`, read }
      if (bytes.length < length || length > maxLineBytes) return { fingerprint: null, read }
      length *= 4
    }
  })

/** The stored fingerprint's line length. */
export const fingerprintLength = (fingerprint: string | null) =>
  fingerprint === null ? undefined : Number(fingerprint.slice(fingerprint.lastIndexOf(":") + 1))

/**
 * Whether `stream` goes on in the file open at `fd`: its first line, and its
 * anchor at its offset, byte for byte. Returns the bytes it read too.
 */
export const continues = (path: string, fd: number, stream: Stream, file: ListedFile, fingerprint: string | null) =>
  Effect.gen(function* () {
    if (stream.fingerprint === null || stream.fingerprint !== fingerprint) return { goesOn: false, read: 0 }
    if (file.size < stream.processed) return { goesOn: false, read: 0 }
    if (stream.anchor === null) return { goesOn: stream.lines === 0, read: 0 }
    const { offset, length, hash } = stream.anchor
    const bytes = yield* readAt(path, fd, offset, length + 1)
    return {
      goesOn: bytes.length === length + 1 && bytes[length] === 10 && hashLine(bytes.subarray(0, length)) === hash,
      read: bytes.length
    }
  })

interface Pending {
  entries: Array<NewEntry>
  bytes: number
}

/**
 * Imports the lines from `from` to the end as new entries of `stream` (null:
 * create it), batch by batch, each with its checkpoint. `base` is the
 * checkpoint before (the stream's, or a fresh one).
 */
const importFrom = (
  fd: number,
  file: ListedFile,
  stream: number | null,
  base: Checkpoint,
  ctx: FileContext,
  took: PathTaken,
  readAtUs: number,
  fingerprint: string | null
) =>
  Effect.gen(function* () {
    let current = stream
    let seq = base.nextSeq
    let anchor: Anchor | null = base.anchor
    // A stored anchor is taken to be a message: only a message moves it (an older anchor is still a valid one).
    let anchorIsMessage = base.anchor !== null
    // The entries after the anchor: a later tail sync checks them without a database read.
    let tailHashes = [...base.tailHashes]
    let imported = 0
    const errors: Array<ItemErrorRow> = []
    let pending: Pending = { entries: [], bytes: 0 }
    let processed = base.processed
    let lines = base.lines
    // A new stream's first write clears what was recorded under its path (an earlier file's errors).
    let clearOthers = took === "new"
    let errorCount = 0
    const path = file.key
    const checkpoint = (pendingTail: boolean): Checkpoint => ({
      ...base,
      path,
      gone: false,
      fingerprint,
      device: file.device,
      inode: file.inode,
      size: file.size,
      mtimeUs: file.mtimeUs,
      racy: file.mtimeUs + racyWindowUs > readAtUs,
      processed,
      lines,
      anchor,
      tailHashes,
      nextSeq: seq,
      backlog: 0,
      backlogCap: null,
      pendingTail,
      lastPath: took
    })
    const flush = (pendingTail: boolean) =>
      Effect.gen(function* () {
        // Errors first: a batch that moves the checkpoint past a bad line has recorded it.
        errorCount += errors.length
        if (errors.length > 0 || clearOthers) yield* ctx.writer.errors(errors.splice(0), clearOthers)
        clearOthers = false
        const batch = pending
        pending = { entries: [], bytes: 0 }
        current = yield* ctx.writer.write({
          stream: current,
          checkpoint: checkpoint(pendingTail),
          entries: batch.entries
        })
        imported += batch.entries.length
        yield* ctx.writer.imported(batch.entries.length, batch.bytes)
      })
    const scanned = yield* scan(file.absolute, fd, base.processed, base.lines, ctx.maxLineBytes, (raw) =>
      Effect.gen(function* () {
        for (const line of raw) {
          processed = line.offset + line.bytes.length + 1
          lines = line.number + 1
          if (line.tooLong) {
            errors.push(
              lineError(path, line, `longer than the ${Math.round(ctx.maxLineBytes / 1024 / 1024)} MiB line limit`)
            )
            continue
          }
          const parsed = parseLine(line.bytes, ctx.fields)
          if (parsed._tag === "Invalid") {
            errors.push(lineError(path, line, parsed.reason))
            continue
          }
          const hash = hashLine(line.bytes)
          pending.entries.push({
            identity: identityOf(parsed.id, parsed.id === null ? seq++ : seq),
            position: line.number,
            byteOffset: line.offset,
            kind: parsed.kind,
            role: parsed.role,
            json: parsed.json,
            lineHash: hash
          })
          pending.bytes += line.bytes.length
          // Messages anchor; while a file has none, its last entry does.
          if (parsed.kind === "message" || !anchorIsMessage) {
            anchor = { offset: line.offset, length: line.bytes.length, hash, position: line.number }
            anchorIsMessage = parsed.kind === "message"
            tailHashes = []
          } else {
            tailHashes.push(hash)
          }
        }
        if (pending.entries.length >= batchEntries || pending.bytes >= batchBytes) yield* flush(true)
      })
    )
    processed = scanned.end
    lines = scanned.lines
    yield* flush(scanned.pendingTail)
    return {
      path,
      stream: current,
      took,
      imported,
      absent: 0,
      backlog: 0,
      pendingTail: scanned.pendingTail,
      errors: errorCount,
      bytesRead: scanned.bytesRead
    } satisfies FileReport
  })

const freshCheckpoint = (path: string): Checkpoint => ({
  path,
  gone: false,
  fingerprint: null,
  device: null,
  inode: null,
  size: 0,
  mtimeUs: 0,
  racy: false,
  processed: 0,
  lines: 0,
  anchor: null,
  tailHashes: [],
  nextSeq: 0,
  backlog: 0,
  backlogCap: null,
  pendingTail: false,
  lastPath: null
})

/** A file seen for the first time: a new stream, every line imported (a first import knows no flood cap). */
export const importNew = (file: ListedFile, fd: number, fingerprint: string | null, ctx: FileContext) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    importFrom(fd, file, null, freshCheckpoint(file.key), ctx, "new", now * 1000, fingerprint)
  ).pipe(Effect.map((report) => ({ ...report, path: file.key })))

/**
 * The tail, if the stretch between the anchor and the processed offset is
 * still what was stored there (entries and a line boundary at the offset);
 * otherwise a reconcile. The caller has checked the anchor (`continues`).
 */
export const syncTail = (
  file: ListedFile,
  fd: number,
  stream: Stream,
  fingerprint: string | null,
  ctx: FileContext,
  movedFrom?: string
) =>
  Effect.gen(function* () {
    const now = (yield* Clock.currentTimeMillis) * 1000
    const anchor = stream.anchor
    let regionBytes = 0
    if (anchor !== null) {
      const stored = stream.tailHashes
      let matched = 0
      let clean = true
      const between = yield* scan(
        file.absolute,
        fd,
        anchor.offset + anchor.length + 1,
        anchor.position + 1,
        ctx.maxLineBytes,
        (raw) =>
          Effect.sync(() => {
            for (const line of raw) {
              if (line.tooLong) continue
              if (parseLine(line.bytes, ctx.fields)._tag === "Invalid") continue
              if (stored[matched] === hashLine(line.bytes)) matched++
              else clean = false
            }
          }),
        stream.processed
      )
      regionBytes = between.bytesRead
      if (!clean || matched !== stored.length || between.end !== stream.processed) {
        return yield* reconcile(file, fd, stream, fingerprint, ctx, movedFrom)
      }
    }
    const report = yield* importFrom(
      fd,
      file,
      stream.stream,
      { ...stream, path: file.key },
      ctx,
      "tail",
      now,
      fingerprint
    )
    return {
      ...report,
      // A file looked at again (its mtime was too recent to trust) that had nothing new.
      took: report.imported === 0 && report.errors === 0 && stream.processed === file.size ? "unchanged" : "tail",
      path: file.key,
      bytesRead: report.bytesRead + regionBytes,
      ...(movedFrom === undefined ? {} : { movedFrom })
    } satisfies FileReport
  })

/** Aligns the whole file with the stored entries; imports what is new (capped), marks what is gone. */
export const reconcile = (
  file: ListedFile,
  fd: number,
  stream: Stream,
  fingerprint: string | null,
  ctx: FileContext,
  movedFrom?: string
) =>
  Effect.gen(function* () {
    const now = (yield* Clock.currentTimeMillis) * 1000
    const facts: Array<LineFacts> = []
    const errors: Array<ItemErrorRow> = []
    const scanned = yield* scan(file.absolute, fd, 0, 0, ctx.maxLineBytes, (raw) =>
      Effect.sync(() => {
        for (const line of raw) {
          if (line.tooLong) {
            errors.push(
              lineError(file.key, line, `longer than the ${Math.round(ctx.maxLineBytes / 1024 / 1024)} MiB line limit`)
            )
            continue
          }
          const parsed = parseLine(line.bytes, ctx.fields)
          if (parsed._tag === "Invalid") {
            errors.push(lineError(file.key, line, parsed.reason))
            continue
          }
          facts.push({
            number: line.number,
            offset: line.offset,
            length: line.bytes.length,
            hash: hashLine(line.bytes),
            id: parsed.id,
            kind: parsed.kind
          })
        }
      })
    )
    const stored = yield* ctx.writer.present(stream.stream)

    // Which stored entry each of the file's entries is (by identity where entries carry one).
    const matchOf = new Map<number, StoredEntry>()
    const byIdentity = new Map(stored.map((e) => [e.identity, e]))
    const positional: Array<number> = []
    facts.forEach((fact, i) => {
      const known = fact.id === null ? undefined : byIdentity.get(identityOf(fact.id, 0))
      if (known !== undefined) matchOf.set(i, known)
      else if (fact.id === null) positional.push(i)
    })
    const storedPositional = stored.filter((e) => e.identity.startsWith("#"))
    for (const [a, b] of alignByHash(
      storedPositional.map((e) => e.lineHash),
      positional.map((i) => facts[i]!.hash)
    )) {
      matchOf.set(positional[b]!, storedPositional[a]!)
    }
    const matchedIdentities = new Set([...matchOf.values()].map((e) => e.identity))
    const absent = stored.filter((e) => !matchedIdentities.has(e.identity)).map((e) => e.identity)
    const fresh = facts.map((_, i) => i).filter((i) => !matchOf.has(i))

    // The flood cap: oldest first, at most the cap per pass; the checkpoint never passes refused work.
    const limit = stream.backlog > 0 && stream.backlogCap !== null ? stream.backlogCap : floodCap(stored.length)
    const capped = !ctx.allowMassChange && stored.length > 0 && fresh.length > limit
    const now_ = capped ? fresh.slice(0, limit) : fresh
    const backlog = fresh.length - now_.length
    const firstRefused = capped ? facts[fresh[limit]!]! : undefined
    if (capped) {
      yield* Effect.logWarning(
        `${file.key}: a reconcile found ${fresh.length} new entries; importing ${now_.length} now and ${backlog} at the next syncs (the flood cap for a file of ${stored.length} entries; --allow-mass-change lifts it)`
      )
    }
    const processed = firstRefused?.offset ?? scanned.end
    const lines = firstRefused?.number ?? scanned.lines
    const before = facts.filter((f) => f.offset < processed)
    const anchorFact = [...before].reverse().find((f) => f.kind === "message") ?? before.at(-1)

    // Entries to import: read again, by offset.
    let seq = stream.nextSeq
    const entries: Array<NewEntry> = []
    let bytes = 0
    for (const i of now_) {
      const fact = facts[i]!
      const raw = yield* readAt(file.absolute, fd, fact.offset, fact.length)
      const parsed = parseLine(raw, ctx.fields)
      if (parsed._tag === "Invalid") continue
      entries.push({
        identity: identityOf(parsed.id, parsed.id === null ? seq++ : seq),
        position: fact.number,
        byteOffset: fact.offset,
        kind: parsed.kind,
        role: parsed.role,
        json: parsed.json,
        lineHash: fact.hash
      })
      bytes += fact.length
    }
    const moved = [...matchOf].map(([i, e]) => ({
      identity: e.identity,
      position: facts[i]!.number,
      byteOffset: facts[i]!.offset
    }))
    const checkpoint = (imported: number): Checkpoint => ({
      ...stream,
      path: file.key,
      gone: false,
      fingerprint,
      device: file.device,
      inode: file.inode,
      size: file.size,
      mtimeUs: file.mtimeUs,
      racy: file.mtimeUs + racyWindowUs > now,
      // Until the last batch of this pass is in, a rerun reconciles again (the alignment finds
      // what was imported): the checkpoint says there is more.
      processed: imported === entries.length ? processed : 0,
      lines: imported === entries.length ? lines : 0,
      anchor:
        imported === entries.length && anchorFact !== undefined
          ? { offset: anchorFact.offset, length: anchorFact.length, hash: anchorFact.hash, position: anchorFact.number }
          : null,
      tailHashes:
        imported === entries.length && anchorFact !== undefined
          ? before.filter((f) => f.number > anchorFact.number).map((f) => f.hash)
          : [],
      nextSeq: seq,
      backlog: backlog + (entries.length - imported),
      backlogCap: backlog + (entries.length - imported) > 0 ? limit : null,
      pendingTail: scanned.pendingTail,
      lastPath: "reconcile"
    })
    yield* ctx.writer.errors(errors, true)
    // Moves and absences go with the first batch; each batch carries the checkpoint so far.
    let written = 0
    let current = stream.stream
    do {
      const batch = entries.slice(written, written + batchEntries)
      written += batch.length
      current = yield* ctx.writer.write({
        stream: current,
        checkpoint: checkpoint(written),
        entries: batch,
        ...(written <= batchEntries ? { moved, absent } : {})
      })
      yield* ctx.writer.imported(
        batch.length,
        batch.reduce((n, e) => n + e.json.byteLength, 0)
      )
    } while (written < entries.length)
    return {
      path: file.key,
      stream: current,
      took: "reconcile",
      ...(movedFrom === undefined ? {} : { movedFrom }),
      imported: entries.length,
      absent: absent.length,
      backlog,
      pendingTail: scanned.pendingTail,
      errors: errors.length,
      bytesRead: scanned.bytesRead + bytes
    } satisfies FileReport
  })
