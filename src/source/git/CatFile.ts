/**
 * Blob contents through one long-lived `git cat-file --batch` process: a
 * request is an object id on its stdin, the answer `<oid> <type> <size>` LF
 * `<content>` LF (or `<oid> missing` LF) on its stdout, in request order. Many
 * reads can be outstanding at once; each waits for its own answer. The
 * process starts at the first read and is stopped with the scope; if it dies,
 * the reads waiting on it fail and the next read starts a new one.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process"
import type { Readable, Writable } from "node:stream"
import { Effect } from "effect"
import { SourceUnavailable } from "../Source.js"
import { gitEnv, notInstalled } from "./Git.js"

export type BlobAnswer = { readonly _tag: "Found"; readonly bytes: Buffer } | { readonly _tag: "Missing" }

export interface CatFile {
  readonly read: (oid: string) => Effect.Effect<BlobAnswer, SourceUnavailable>
}

type Waiter = (answer: Effect.Effect<BlobAnswer, SourceUnavailable>) => void

/** Splits cat-file's output into answers, however the bytes arrive. */
class AnswerParser {
  private header: Buffer = Buffer.alloc(0)
  private body: Buffer | null = null
  private filled = 0
  /** The LF after a body is still to come. */
  private trailer = false

  constructor(private readonly onAnswer: (answer: BlobAnswer) => void) {}

  push(chunk: Buffer) {
    let at = 0
    while (at < chunk.length) {
      if (this.trailer) {
        at++
        this.trailer = false
        this.deliver()
      } else if (this.body !== null) {
        const n = chunk.copy(this.body, this.filled, at, Math.min(chunk.length, at + this.body.length - this.filled))
        this.filled += n
        at += n
        if (this.filled === this.body.length) this.trailer = true
      } else {
        const newline = chunk.indexOf(10, at)
        if (newline === -1) {
          this.header = Buffer.concat([this.header, chunk.subarray(at)])
          return
        }
        const line = Buffer.concat([this.header, chunk.subarray(at, newline)]).toString("latin1")
        this.header = Buffer.alloc(0)
        at = newline + 1
        const [, type, size] = line.split(" ")
        if (type === "missing" || size === undefined) {
          this.onAnswer({ _tag: "Missing" })
        } else {
          this.body = Buffer.allocUnsafe(Number(size))
          this.filled = 0
          if (this.body.length === 0) this.trailer = true
        }
      }
    }
  }

  private deliver() {
    const bytes = this.body!
    this.body = null
    this.onAnswer({ _tag: "Found", bytes })
  }
}

export const make = (repo: string) =>
  Effect.gen(function* () {
    let child: ChildProcessByStdio<Writable, Readable, Readable> | undefined
    const waiting: Array<Waiter> = []

    const stopped = (reason: string) => {
      child = undefined
      const failure = Effect.fail(new SourceUnavailable({ root: repo, reason }))
      for (const waiter of waiting.splice(0)) waiter(failure)
    }

    const start = () => {
      const started = spawn("git", ["-C", repo, "cat-file", "--batch"], {
        stdio: ["pipe", "pipe", "pipe"],
        env: gitEnv()
      })
      const parser = new AnswerParser((answer) => waiting.shift()?.(Effect.succeed(answer)))
      let stderr = ""
      started.stdout.on("data", (chunk: Buffer) => parser.push(chunk))
      started.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
      // A write after the process died surfaces here and in "close": "close" reports it.
      started.stdin.on("error", () => {})
      started.on("error", (cause: NodeJS.ErrnoException) => {
        if (child === started) stopped(cause.code === "ENOENT" ? notInstalled(repo).reason : cause.message)
      })
      started.on("close", (code, signal) => {
        if (child === started) {
          stopped(`git cat-file stopped (${signal ?? `exit ${code}`})${stderr ? `: ${stderr.trim()}` : ""}`)
        }
      })
      child = started
      return started
    }

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        const running = child
        child = undefined
        running?.stdin.end()
        running?.kill()
      })
    )

    const read = (oid: string): Effect.Effect<BlobAnswer, SourceUnavailable> =>
      Effect.async<BlobAnswer, SourceUnavailable>((resume) => {
        // Queued and written in one step: answers come back in the order of the requests.
        const process = child ?? start()
        waiting.push(resume)
        process.stdin.write(`${oid}\n`)
      })

    return { read } satisfies CatFile
  })
