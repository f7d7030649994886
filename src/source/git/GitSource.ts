/**
 * A git repository as a source. An op's target is a commit (what `--ref`
 * names when the op opens); the watermark is the last commit fully synced.
 * An item's version is its blob id, so an unchanged file is never read, and
 * content always comes from the commit (never the working tree), through one
 * `git cat-file --batch` process.
 *
 * The plan is the diff from the watermark to the target when the watermark is
 * an ancestor of it. Otherwise (the first sync, history rewritten by a force
 * push, a watermark commit pruned by `git gc` or cut off by a shallow clone)
 * the target's whole tree is listed and reconciled against what is stored:
 * only blobs that differ are read; nothing is imported again wholesale.
 *
 * Symlinks and submodules are not synced: they are reported as item errors
 * with their reason, as are Git LFS pointers (the content is not in git).
 */
import { createHash } from "node:crypto"
import * as path from "node:path"
import { Effect, Stream } from "effect"
import { defaultExclude, defaultInclude, matcher } from "../globs.js"
import { ItemProblem, type PlannedItem, type Source, SourceUnavailable, type Target } from "../Source.js"
import { notText, tooLarge } from "../text.js"
import * as CatFile from "./CatFile.js"
import * as Git from "./Git.js"

export interface GitOptions {
  /** What to sync: a branch, tag or commit. */
  readonly ref: string
  readonly include: ReadonlyArray<string>
  readonly exclude: ReadonlyArray<string>
  readonly maxBytes: number
}

export const defaultGitOptions: GitOptions = {
  ref: "HEAD",
  include: defaultInclude,
  exclude: defaultExclude,
  maxBytes: 10 * 1024 * 1024
}

const lfsPointerHeader = Buffer.from("version https://git-lfs.github.com/spec/v1\n")

const skipReason: Record<Exclude<Git.EntryKind, "file">, string> = {
  symlink: "symlink (not followed)",
  submodule: "submodule (its files are not synced)",
  other: "not a regular file"
}

const short = (commit: string) => commit.slice(0, 12)

/** The commit a watermark records, if it was written by this source. */
const watermarkCommit = (watermark: unknown): string | null => {
  const recorded = watermark as { kind?: unknown; commit?: unknown } | null
  return recorded?.kind === "git" && typeof recorded.commit === "string" ? recorded.commit : null
}

/**
 * Whether the work tree has uncommitted changes to tracked files (they are not
 * synced: only commits are); null for a repository without a work tree.
 */
export const hasUncommittedChanges = (repo: string) =>
  Effect.gen(function* () {
    const inWorkTree = yield* Git.run(repo, ["rev-parse", "--is-inside-work-tree"])
    if (inWorkTree.code !== 0 || inWorkTree.stdout.toString().trim() !== "true") return null
    const changes = yield* Git.output(
      repo,
      ["status", "--porcelain", "-z", "--untracked-files=no", "--ignore-submodules"],
      "git status"
    )
    return changes.length > 0
  })

export const make = (repo: string, options: GitOptions = defaultGitOptions) =>
  Effect.gen(function* () {
    const root = path.resolve(repo)
    const probe = yield* Git.run(root, ["rev-parse", "--git-dir"])
    if (probe.code !== 0) {
      // git says why: not a repository, or one it refuses (e.g. "dubious ownership").
      const said = probe.stderr.split("\n")[0]?.replace(/^fatal: /, "")
      return yield* new SourceUnavailable({
        root,
        reason: said ? `git cannot use it: ${said}` : "not a git repository",
        hint: "to sync it as a plain folder, leave out --git and --ref"
      })
    }
    const blobs = yield* CatFile.make(root)
    const included = matcher(options.include)
    const excluded = matcher(options.exclude)
    const wanted = (key: string) => included(key) && !excluded(key)

    const commitOf = (ref: string) =>
      Effect.flatMap(Git.run(root, ["rev-parse", "--verify", "--end-of-options", `${ref}^{commit}`]), (result) =>
        result.code === 0
          ? Effect.succeed(result.stdout.toString("latin1").trim())
          : Effect.fail(
              new SourceUnavailable({
                root,
                reason: `${ref} does not name a commit`,
                hint: ref === "HEAD" ? "the repository has no commits yet" : "--ref takes a branch, tag or commit"
              })
            )
      )
    const exists = (commit: string) => Git.succeeds(root, ["cat-file", "-e", `${commit}^{commit}`])
    const isAncestor = (ancestor: string, commit: string) =>
      Git.succeeds(root, ["merge-base", "--is-ancestor", ancestor, commit])
    /** A commit the diff can start from: still in the repository, and in the target's history. */
    const reachable = (from: string, to: string) =>
      Effect.flatMap(exists(from), (present) => (present ? isAncestor(from, to) : Effect.succeed(false)))

    const target = (pinned: Target | null) =>
      Effect.gen(function* () {
        const commit = yield* commitOf(options.ref)
        const pinnedCommit = pinned?.commit
        if (pinnedCommit !== undefined && pinnedCommit !== commit) {
          // Commits that arrived since the op began wait for the next sync.
          if (yield* reachable(pinnedCommit, commit)) return pinned!
          yield* Effect.logWarning(
            `commit ${short(pinnedCommit)}, where the open op was going, is no longer in the history of ${options.ref}: going to ${short(commit)} instead`
          )
        }
        return { ref: options.ref, commit } satisfies Target
      })

    /** A tree entry as the sync sees it: a file to plan, or the reason it is not synced. */
    const planned = (entry: Git.TreeEntry): PlannedItem | ItemProblem =>
      entry.kind === "file"
        ? { key: entry.key, version: entry.oid }
        : new ItemProblem({ key: entry.key, reason: skipReason[entry.kind] })

    const listTree = (commit: string) =>
      Effect.map(Git.output(root, ["ls-tree", "-r", "-z", "--full-tree", commit], "listing the tree"), (output) => ({
        _tag: "Complete" as const,
        items: Stream.fromIterable(
          Git.parseLsTree(output)
            .filter((entry) => wanted(entry.key))
            .map(planned)
        ),
        unlisted: Effect.succeed([])
      }))

    const diff = (from: string, to: string) =>
      Effect.map(
        Git.output(root, ["diff-tree", "-r", "-z", "--raw", "-M", "--no-abbrev", from, to], "diffing commits"),
        (output) => {
          const items: Array<PlannedItem | ItemProblem> = []
          const gone: Array<string> = []
          for (const change of Git.parseRawDiff(output)) {
            if (change._tag === "Gone") {
              if (wanted(change.key)) gone.push(change.key)
              continue
            }
            if (!wanted(change.entry.key)) continue
            const item = planned(change.entry)
            items.push(item)
            // A file that became a symlink or a submodule: its document goes.
            if (item instanceof ItemProblem) gone.push(item.key)
          }
          return { _tag: "Delta" as const, items: Stream.fromIterable(items), gone }
        }
      )

    const plan = (to: Target, watermark: unknown) =>
      Effect.gen(function* () {
        const from = watermarkCommit(watermark)
        if (from !== null && (yield* reachable(from, to.commit!))) return yield* diff(from, to.commit!)
        if (from !== null) {
          yield* Effect.logWarning(
            `commit ${short(from)}, the last one synced, is no longer in the history of ${to.ref}: reconciling the whole tree of ${short(to.commit!)} (only changed files are read)`
          )
        }
        return yield* listTree(to.commit!)
      })

    const readOne = (item: PlannedItem) =>
      Effect.flatMap(blobs.read(item.version), (answer) => {
        const problem = (reason: string) => Effect.fail(new ItemProblem({ key: item.key, reason }))
        if (answer._tag === "Missing") return problem("blob not in the repository (a partial or shallow clone?)")
        const bytes = answer.bytes
        if (bytes.length > options.maxBytes) return Effect.fail(tooLarge(item.key, options.maxBytes, bytes.length))
        if (bytes.length < 1024 && bytes.subarray(0, lfsPointerHeader.length).equals(lfsPointerHeader)) {
          return problem("Git LFS pointer, content not available")
        }
        const refused = notText(item.key, bytes)
        if (refused !== undefined) return Effect.fail(refused)
        return Effect.succeed({
          key: item.key,
          content: bytes,
          size: bytes.length,
          mtime: null,
          contentHash: createHash("sha256").update(bytes).digest("hex"),
          version: item.version
        })
      })

    // The whole batch is asked of cat-file at once: its answers come back in order.
    const read = (items: ReadonlyArray<PlannedItem>) =>
      Effect.forEach(items, (item) => Effect.catchTag(readOne(item), "ItemProblem", Effect.succeed), {
        concurrency: "unbounded"
      })

    return {
      kind: "git",
      root,
      target,
      plan,
      read,
      watermark: (to) => ({ kind: "git", ref: to.ref!, commit: to.commit! })
    } satisfies Source
  })
