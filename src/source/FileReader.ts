/**
 * File reads on a worker thread, a batch of files per message. On the main
 * thread, synchronous reads stall everything else while the disk answers (the
 * lease's heartbeat included, on a slow or network file system) and take time
 * the import needs for parsing and writing; on a thread of their own they
 * overlap both. The worker is `workers/read-files.cjs`; the bytes of a batch
 * come back in one buffer that is handed over, not copied.
 */
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import { Data, Effect, type Scope } from "effect"
import { packageRoot } from "../packageRoot.js"

export type FileAnswer =
  | { readonly at: number; readonly size: number; readonly mtimeMicros: number; readonly hash: string }
  | { readonly problem: "symlink" | "notFile" | "binary" | "notUtf8" }
  | { readonly problem: "tooLarge"; readonly size: number }
  | { readonly problem: "errno"; readonly code?: string; readonly message: string }

export interface FileBatch {
  /** One answer per requested key, in order. */
  readonly answers: ReadonlyArray<FileAnswer>
  /** The files' bytes, at the offsets their answers give. */
  readonly bytes: Buffer
}

/** An entry's size and mtime in microseconds (truncated toward zero), without following a symlink. */
export interface FileStat {
  readonly size: number
  readonly mtimeMicros: number
}

export class FileReaderFailed extends Data.TaggedError("FileReaderFailed")<{ readonly reason: string }> {}

export interface FileReader {
  /** Reads `keys` (slash-separated, under `root`), refusing symlinks, non-text files and files over `maxBytes`. */
  readonly read: (
    root: string,
    keys: ReadonlyArray<string>,
    maxBytes: number
  ) => Effect.Effect<FileBatch, FileReaderFailed>
  /** The size and mtime of each of `keys` (null where it cannot be looked up), one call per entry on the thread. */
  readonly stat: (
    root: string,
    keys: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<FileStat | null>, FileReaderFailed>
}

const script = path.join(packageRoot, "workers", "read-files.cjs")

/** What comes back from the thread for one request, or why none will. */
type WorkerAnswer =
  | { readonly answers: ReadonlyArray<FileAnswer>; readonly bytes: Uint8Array }
  | { readonly stats: ReadonlyArray<FileStat | null> }
  | { readonly failed: string }

/** A reader with its worker, stopped when the scope closes. */
export const make: Effect.Effect<FileReader, never, Scope.Scope> = Effect.gen(function* () {
  const worker = yield* Effect.acquireRelease(
    Effect.sync(() => new Worker(script)),
    (worker) => Effect.promise(() => worker.terminate())
  )
  const waiting = new Map<number, (message: WorkerAnswer) => void>()
  let nextId = 0
  let broken: string | null = null
  const failAll = (reason: string) => {
    broken ??= reason
    for (const resume of waiting.values()) resume({ failed: reason })
    waiting.clear()
  }
  worker.on("message", (message: WorkerAnswer & { readonly id: number }) => {
    const resume = waiting.get(message.id)
    waiting.delete(message.id)
    resume?.(message)
  })
  worker.on("error", (error) => failAll(`the file reading thread failed: ${error.message}`))
  worker.on("exit", (code) => failAll(`the file reading thread stopped (exit code ${code})`))

  /** Sends `request` and resumes with what `answer` makes of the reply. */
  const ask = <A>(request: Record<string, unknown>, answer: (message: WorkerAnswer) => A | undefined) =>
    Effect.async<A, FileReaderFailed>((resume) => {
      const settle = (message: WorkerAnswer) => {
        const value = "failed" in message ? undefined : answer(message)
        resume(
          value === undefined
            ? Effect.fail(new FileReaderFailed({ reason: "failed" in message ? message.failed : "unexpected answer" }))
            : Effect.succeed(value)
        )
      }
      if (broken !== null) return settle({ failed: broken })
      const id = nextId++
      waiting.set(id, settle)
      worker.postMessage({ id, ...request })
      return Effect.sync(() => waiting.delete(id))
    })

  return {
    read: (root, keys, maxBytes) =>
      ask({ root, keys, maxBytes }, (message) =>
        "answers" in message
          ? {
              answers: message.answers,
              bytes: Buffer.from(message.bytes.buffer, message.bytes.byteOffset, message.bytes.byteLength)
            }
          : undefined
      ),
    stat: (root, keys) =>
      ask({ kind: "stat", root, keys }, (message) => ("stats" in message ? message.stats : undefined))
  } satisfies FileReader
})
