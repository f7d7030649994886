/**
 * File reads on a worker thread, a batch of files per message. On the main
 * thread, synchronous reads stall everything else while the disk answers (the
 * lease's heartbeat included, on a slow or network file system) and take time
 * the import needs for parsing and writing; on a thread of their own they
 * overlap both. The worker is `workers/read-files.cjs`; the bytes of a batch
 * come back in one buffer that is handed over, not copied. The same thread
 * looks up planned versions (an lstat per file) while the main thread walks.
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

export class FileReaderFailed extends Data.TaggedError("FileReaderFailed")<{ readonly reason: string }> {}

export interface FileReader {
  /** Reads `keys` (slash-separated, under `root`), refusing symlinks, non-text files and files over `maxBytes`. */
  readonly read: (
    root: string,
    keys: ReadonlyArray<string>,
    maxBytes: number
  ) => Effect.Effect<FileBatch, FileReaderFailed>
  /** The planned version of each of `keys` (see DirSource's `lookUpVersion`), in order. */
  readonly versions: (
    root: string,
    keys: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<string>, FileReaderFailed>
}

const script = path.join(packageRoot, "workers", "read-files.cjs")

type Message =
  | { readonly id: number; readonly answers: ReadonlyArray<FileAnswer>; readonly bytes: Uint8Array }
  | { readonly id: number; readonly versions: ReadonlyArray<string> }
type Answer = FileBatch | ReadonlyArray<string>

/** A reader with its worker, stopped when the scope closes. */
export const make: Effect.Effect<FileReader, never, Scope.Scope> = Effect.gen(function* () {
  const worker = yield* Effect.acquireRelease(
    Effect.sync(() => new Worker(script)),
    (worker) => Effect.promise(() => worker.terminate())
  )
  const waiting = new Map<number, (answer: Effect.Effect<Answer, FileReaderFailed>) => void>()
  let nextId = 0
  let broken: string | null = null
  const failAll = (reason: string) => {
    broken ??= reason
    for (const resume of waiting.values()) resume(Effect.fail(new FileReaderFailed({ reason })))
    waiting.clear()
  }
  worker.on("message", (message: Message) => {
    const resume = waiting.get(message.id)
    waiting.delete(message.id)
    if ("versions" in message) return resume?.(Effect.succeed(message.versions))
    const bytes = Buffer.from(message.bytes.buffer, message.bytes.byteOffset, message.bytes.byteLength)
    resume?.(Effect.succeed({ answers: message.answers, bytes }))
  })
  worker.on("error", (error) => failAll(`the file reading thread failed: ${error.message}`))
  worker.on("exit", (code) => failAll(`the file reading thread stopped (exit code ${code})`))

  const ask = (request: Record<string, unknown>) =>
    Effect.async<Answer, FileReaderFailed>((resume) => {
      if (broken !== null) return resume(Effect.fail(new FileReaderFailed({ reason: broken })))
      const id = nextId++
      waiting.set(id, resume)
      worker.postMessage({ ...request, id })
      return Effect.sync(() => waiting.delete(id))
    })

  return {
    read: (root, keys, maxBytes) => ask({ root, keys, maxBytes }) as Effect.Effect<FileBatch, FileReaderFailed>,
    versions: (root, keys) =>
      ask({ root, keys, versions: true }) as Effect.Effect<ReadonlyArray<string>, FileReaderFailed>
  } satisfies FileReader
})
