/**
 * The complete lines of a file from a byte offset, read a chunk at a time:
 * each with its offset, its number (from the caller's count) and its bytes
 * (without the newline). A line longer than the limit is reported, not kept.
 * What follows the last newline is a line still being written: its offset is
 * reported as the tail, and it is never handed out.
 */
import * as fs from "node:fs"
import { Data, Effect } from "effect"
import { eventLoopTurns } from "../../util/eventLoopTurns.js"

export interface RawLine {
  readonly offset: number
  readonly number: number
  /** The line's bytes without its newline; empty for a line too long to keep. */
  readonly bytes: Uint8Array
  readonly tooLong: boolean
}

export interface Scanned {
  /** Where the complete lines end: the next byte to read. */
  readonly end: number
  /** Lines counted, the caller's first number included. */
  readonly lines: number
  /** Whether bytes follow the last newline (a write in progress). */
  readonly pendingTail: boolean
  readonly bytesRead: number
}

const chunkBytes = 1024 * 1024

/** A file that could not be opened or read, with the reason a person can act on. */
export class FileReadFailed extends Data.TaggedError("FileReadFailed")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

export const reasonOf = (cause: unknown): string => {
  const error = cause as NodeJS.ErrnoException
  return error.code === "EACCES" || error.code === "EPERM"
    ? "permission denied"
    : error.code === "ENOENT"
      ? "deleted while syncing"
      : (error.message ?? String(cause))
}

const readSync = (path: string, fd: number, buffer: Buffer, offset: number, length: number, position: number) =>
  Effect.try({
    try: () => fs.readSync(fd, buffer, offset, length, position),
    catch: (cause) => new FileReadFailed({ path, reason: reasonOf(cause) })
  })

/** Reads `length` bytes at `offset` (fewer at the end of the file). */
export const readAt = (path: string, fd: number, offset: number, length: number) =>
  Effect.gen(function* () {
    const buffer = Buffer.allocUnsafe(length)
    let filled = 0
    while (filled < length) {
      const n = yield* readSync(path, fd, buffer, filled, length - filled, offset + filled)
      if (n === 0) break
      filled += n
    }
    return buffer.subarray(0, filled)
  })

/** Opens `path` for reading for the life of the scope. */
export const open = (path: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => fs.openSync(path, "r"),
      catch: (cause) => new FileReadFailed({ path, reason: reasonOf(cause) })
    }),
    (fd) => Effect.sync(() => fs.closeSync(fd))
  )

/**
 * Calls `onLines` with the complete lines from `from` (the first numbered
 * `firstNumber`), a chunk's worth at a time, up to the file's end as it is
 * when the scan reaches it. `onLines` may write: the next chunk is read after.
 */
export const scan = <E, R>(
  path: string,
  fd: number,
  from: number,
  firstNumber: number,
  maxLineBytes: number,
  onLines: (lines: ReadonlyArray<RawLine>) => Effect.Effect<void, E, R>,
  /** Stop reading here (a line that goes past it is left unread). Default: the end of the file. */
  until: number = Infinity
): Effect.Effect<Scanned, E | FileReadFailed, R> =>
  Effect.gen(function* () {
    const breathe = yield* eventLoopTurns("50 millis")
    let position = from
    let number = firstNumber
    let bytesRead = 0
    // The start of a line that continues past the chunk, and its bytes so far.
    let carry: Array<Buffer> = []
    let carryBytes = 0
    let carryStart = from
    let skipping = false
    for (;;) {
      const want = Math.min(chunkBytes, until - position)
      if (want <= 0) break
      const chunk = Buffer.allocUnsafe(want)
      const n = yield* readSync(path, fd, chunk, 0, want, position)
      if (n === 0) break
      bytesRead += n
      const data = chunk.subarray(0, n)
      const lines: Array<RawLine> = []
      let at = 0
      for (;;) {
        const newline = data.indexOf(10, at)
        if (newline < 0) break
        const piece = data.subarray(at, newline)
        if (skipping || carryBytes + piece.length > maxLineBytes) {
          lines.push({ offset: carryStart, number, bytes: new Uint8Array(0), tooLong: true })
        } else if (carryBytes > 0) {
          lines.push({ offset: carryStart, number, bytes: Buffer.concat([...carry, piece]), tooLong: false })
        } else {
          lines.push({ offset: position + at, number, bytes: piece, tooLong: false })
        }
        number++
        carry = []
        carryBytes = 0
        skipping = false
        at = newline + 1
        carryStart = position + at
      }
      if (at < n) {
        const rest = data.subarray(at)
        if (skipping || carryBytes + rest.length > maxLineBytes) {
          skipping = true
          carry = []
          carryBytes = 0
        } else {
          carry.push(rest)
          carryBytes += rest.length
        }
      }
      position += n
      if (lines.length > 0) yield* onLines(lines)
      yield* breathe
    }
    return { end: carryStart, lines: number, pendingTail: carryStart < position, bytesRead }
  })
