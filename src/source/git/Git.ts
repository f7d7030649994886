/**
 * Real `git`, run as a child process, and readers for its machine formats
 * (`-z`: names are raw bytes, never quoted). Only plumbing commands are used,
 * so a user's configuration (external diff tools, pagers, colours) cannot
 * change what is parsed.
 */
import { spawn } from "node:child_process"
import { Effect } from "effect"
import { SourceUnavailable } from "../Source.js"

/** The environment git runs with: never prompt, never page, messages in English. */
export const gitEnv = () => ({
  ...process.env,
  GIT_TERMINAL_PROMPT: "0",
  GIT_PAGER: "cat",
  LC_ALL: "C",
  GIT_OPTIONAL_LOCKS: "0"
})

export interface GitResult {
  readonly code: number
  readonly stdout: Buffer
  readonly stderr: string
}

export const notInstalled = (root: string) =>
  new SourceUnavailable({ root, reason: "git is not installed", hint: "install git (e.g. apt-get install git)" })

/** Runs `git -C repo ...args` to completion; a non-zero exit is returned, not failed. */
export const run = (repo: string, args: ReadonlyArray<string>): Effect.Effect<GitResult, SourceUnavailable> =>
  Effect.async<GitResult, SourceUnavailable>((resume) => {
    const child = spawn("git", ["-C", repo, ...args], { stdio: ["ignore", "pipe", "pipe"], env: gitEnv() })
    const out: Array<Buffer> = []
    const err: Array<Buffer> = []
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk))
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk))
    child.on("error", (cause: NodeJS.ErrnoException) =>
      resume(
        Effect.fail(
          cause.code === "ENOENT"
            ? notInstalled(repo)
            : new SourceUnavailable({ root: repo, reason: `git could not run: ${cause.message}` })
        )
      )
    )
    child.on("close", (code) =>
      resume(
        Effect.succeed({
          code: code ?? -1,
          stdout: Buffer.concat(out),
          stderr: Buffer.concat(err).toString("utf8").trim()
        })
      )
    )
    return Effect.sync(() => child.kill())
  })

/** Runs git and fails, quoting git's own message, unless it exits 0. */
export const output = (repo: string, args: ReadonlyArray<string>, what: string) =>
  Effect.flatMap(run(repo, args), (result) =>
    result.code === 0
      ? Effect.succeed(result.stdout)
      : Effect.fail(
          new SourceUnavailable({
            root: repo,
            reason: `${what} failed: ${result.stderr.split("\n").at(-1) || `git exited ${result.code}`}`
          })
        )
  )

/** Whether `git ...args` exits 0 (a yes/no question such as `merge-base --is-ancestor`). */
export const succeeds = (repo: string, args: ReadonlyArray<string>) =>
  Effect.map(run(repo, args), (result) => result.code === 0)

// ---------------------------------------------------------------------------
// Names. A git path is bytes. The key is the path as text when it is valid
// UTF-8 (nearly always); otherwise each byte that is not part of a valid UTF-8
// sequence is written as \xNN, so distinct names keep distinct keys.

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** Length of the valid UTF-8 sequence starting at `i`, or 0. */
const sequenceLength = (bytes: Uint8Array, i: number): number => {
  const b = bytes[i]!
  if (b < 0x80) return 1
  const length = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0
  if (length === 0 || i + length > bytes.length) return 0
  try {
    utf8.decode(bytes.subarray(i, i + length))
    return length
  } catch {
    return 0
  }
}

export const keyOf = (name: Uint8Array): string => {
  try {
    return utf8.decode(name)
  } catch {
    let key = ""
    for (let i = 0; i < name.length;) {
      const length = sequenceLength(name, i)
      if (length === 0) {
        key += `\\x${name[i]!.toString(16).padStart(2, "0")}`
        i++
      } else {
        key += utf8.decode(name.subarray(i, i + length))
        i += length
      }
    }
    return key
  }
}

// ---------------------------------------------------------------------------
// Tree entries and raw diffs.

export type EntryKind = "file" | "symlink" | "submodule" | "other"

export const kindOf = (mode: string): EntryKind =>
  mode === "100644" || mode === "100755"
    ? "file"
    : mode === "120000"
      ? "symlink"
      : mode === "160000"
        ? "submodule"
        : "other"

export interface TreeEntry {
  readonly key: string
  readonly kind: EntryKind
  readonly oid: string
}

const fields = (output: Buffer): Array<Buffer> => {
  const parts: Array<Buffer> = []
  let start = 0
  for (let end = output.indexOf(0, start); end !== -1; end = output.indexOf(0, start)) {
    parts.push(output.subarray(start, end))
    start = end + 1
  }
  return parts
}

/** `git ls-tree -r -z --full-tree`: `<mode> SP <type> SP <oid> TAB <path>` NUL-terminated. */
export const parseLsTree = (output: Buffer): Array<TreeEntry> =>
  fields(output).map((record) => {
    const tab = record.indexOf(9)
    const [mode, , oid] = record.subarray(0, tab).toString("latin1").split(" ")
    return { key: keyOf(record.subarray(tab + 1)), kind: kindOf(mode!), oid: oid! }
  })

export type Change =
  { readonly _tag: "Gone"; readonly key: string } | { readonly _tag: "Present"; readonly entry: TreeEntry }

/**
 * `git diff-tree -r -z --raw -M --no-abbrev`: for each change
 * `:<mode> <mode> <oid> <oid> <status>` NUL `<path>` NUL, and a second path
 * for renames and copies. Every change becomes what is gone and what is
 * present at the target.
 */
export const parseRawDiff = (output: Buffer): Array<Change> => {
  const parts = fields(output)
  const changes: Array<Change> = []
  for (let i = 0; i < parts.length;) {
    const [, dstMode, , dstOid, status] = parts[i]!.toString("latin1").slice(1).split(" ")
    const letter = status!.charAt(0)
    const first = keyOf(parts[i + 1]!)
    if (letter === "R" || letter === "C") {
      const second = keyOf(parts[i + 2]!)
      if (letter === "R") changes.push({ _tag: "Gone", key: first })
      changes.push({ _tag: "Present", entry: { key: second, kind: kindOf(dstMode!), oid: dstOid! } })
      i += 3
    } else {
      changes.push(
        letter === "D"
          ? { _tag: "Gone", key: first }
          : { _tag: "Present", entry: { key: first, kind: kindOf(dstMode!), oid: dstOid! } }
      )
      i += 2
    }
  }
  return changes
}
