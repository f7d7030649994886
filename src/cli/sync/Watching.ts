/**
 * `tidemark sync PATH --watch`: what to watch for each kind of source, one
 * line (or JSON object) per round on stdout, and each round's maintenance paid
 * in the watch itself (a few changed documents: no process to start per
 * round), unless maintenance is off.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Console, Duration, Effect, Option, type Ref } from "effect"
import type { DirectDb, MainDb } from "../../db/Database.js"
import type { Lease } from "../../lock/LeaseLock.js"
import * as Payer from "../../maintenance/Payer.js"
import * as Git from "../../source/git/Git.js"
import type * as JsonlSync from "../../source/jsonl/JsonlSync.js"
import type { Progress } from "../../sync/Progress.js"
import type * as SyncProgram from "../../sync/SyncProgram.js"
import * as FileWatcher from "../../sync/watch/FileWatcher.js"
import * as Watch from "../../sync/watch/Watch.js"
import type { LeaseOptions } from "../../sync/UnderLease.js"
import { payerLayer } from "../commands/maintain.js"

export interface Watched {
  readonly dir: string
  readonly ignore: ReadonlyArray<string>
  readonly relevant: (file: string) => boolean
}

const under = (dir: string, file: string) => file === dir || file.startsWith(`${dir}${path.sep}`)

/** A folder: any change below it, but in .git and node_modules (never synced). */
export const folder = (root: string): Watched => ({
  dir: root,
  ignore: [".git", "node_modules"],
  relevant: (file) => !under(path.join(root, ".git"), file) && !under(path.join(root, "node_modules"), file)
})

/** A repository: its refs (a commit, a checkout, a fetch move them); the work tree is not synced. */
export const repository = (root: string) =>
  Effect.map(Git.run(root, ["rev-parse", "--absolute-git-dir"]), (result): Watched => {
    const gitDir = result.stdout.toString("utf8").trim()
    return {
      dir: gitDir,
      ignore: ["objects", "logs", "hooks", "info"],
      relevant: (file) => {
        const name = path.relative(gitDir, file).split(path.sep).join("/")
        return name === "HEAD" || name === "packed-refs" || name.startsWith("refs/")
      }
    }
  })

/** JSONL: the log files (and their rotations) under a folder, or one file and its rotations. */
export const logs = (root: string): Watched =>
  fs.statSync(root).isDirectory()
    ? { dir: root, ignore: [".git", "node_modules"], relevant: (file) => path.basename(file).includes(".jsonl") }
    : { dir: path.dirname(root), ignore: [], relevant: (file) => file === root || file.startsWith(`${root}.`) }

export type RoundSummary = SyncProgram.SyncSummary | JsonlSync.JsonlSummary

const isJsonl = (s: RoundSummary): s is JsonlSync.JsonlSummary => "paths" in s

const changedBy = (s: RoundSummary) => (isJsonl(s) ? s.imported + s.entriesDeleted : s.imported + s.deleted)

const describe = (report: Watch.RoundReport<RoundSummary>) => {
  const s = report.summary
  const why =
    report.reason === "change"
      ? `${report.changes} change${report.changes === 1 ? "" : "s"}`
      : report.reason === "overflow"
        ? "the OS dropped notifications: rescan"
        : report.reason
  const what = isJsonl(s)
    ? `imported ${s.imported} entries from ${s.seen} files, ${s.failed} failed`
    : `imported ${s.imported}, deleted ${s.deleted}, ${s.failed} failed, ${s.unchanged} unchanged`
  return `watch: round ${report.round} (${why}) in ${report.seconds.toFixed(2)} s: ${what}`
}

export interface WatchRun<E, R> {
  readonly sourceId: string
  readonly watched: Watched
  readonly json: boolean
  readonly maintenance: "background" | "inline" | "off"
  readonly timings: Watch.WatchTimings
  readonly lease: LeaseOptions
  readonly progress: Ref.Ref<Progress>
  readonly round: (lease: Lease, progress: Ref.Ref<Progress>) => Effect.Effect<RoundSummary, E, R>
  readonly aroundFirst: <A, E1, R1>(
    first: Effect.Effect<A, E1, R1>,
    progress: Ref.Ref<Progress>
  ) => Effect.Effect<A, E1, R1>
}

/** The round's debt, paid here; a failure is said and left owed (the next round or command pays it). */
const payRound = (sourceId: string) =>
  Payer.payDue(sourceId).pipe(
    Effect.provide(payerLayer),
    Effect.catchAll((error) => Effect.logWarning(`watch: maintenance left owed: ${String(error)}`))
  )

export const run = <E, R>(options: WatchRun<E, R>) =>
  Effect.gen(function* () {
    yield* Effect.logInfo(
      `watching ${options.watched.dir} (a round ${Duration.format(options.timings.debounce)} after changes settle; a rescan every ${Duration.format(options.timings.rescanEvery)}); SIGINT or SIGTERM stops after the round in flight`
    )
    return yield* Watch.watch<RoundSummary, E, R | MainDb | DirectDb>({
      sourceId: options.sourceId,
      dir: options.watched.dir,
      ignore: options.watched.ignore,
      relevant: options.watched.relevant,
      timings: options.timings,
      lease: options.lease,
      progress: options.progress,
      round: options.round,
      aroundFirst: options.aroundFirst,
      onRound: (report) =>
        Effect.gen(function* () {
          yield* options.json
            ? Console.log(
                JSON.stringify({
                  type: "round",
                  round: report.round,
                  reason: report.reason,
                  changes: report.changes,
                  seconds: report.seconds,
                  ...report.summary
                })
              )
            : Console.log(describe(report))
          if (options.maintenance !== "off" && changedBy(report.summary) > 0) yield* payRound(options.sourceId)
        })
    }).pipe(Effect.provide(FileWatcher.layerParcel))
  })

/** The flags' timings over the defaults. */
export const timingsOf = (flags: {
  readonly debounce: Option.Option<Duration.Duration>
  readonly rescanEvery: Option.Option<Duration.Duration>
}): Watch.WatchTimings => ({
  ...Watch.defaultWatchTimings,
  ...Option.match(flags.debounce, { onNone: () => ({}), onSome: (debounce) => ({ debounce }) }),
  ...Option.match(flags.rescanEvery, { onNone: () => ({}), onSome: (rescanEvery) => ({ rescanEvery }) })
})
