import * as fs from "node:fs"
import * as path from "node:path"
import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, Duration, Effect, Either, Option, Ref } from "effect"
import * as LeaseTimings from "../../lock/LeaseTimings.js"
import * as DirSource from "../../source/DirSource.js"
import * as GitSource from "../../source/git/GitSource.js"
import { initialProgress } from "../../sync/Progress.js"
import * as RunState from "../../state/RunState.js"
import * as SyncProgram from "../../sync/SyncProgram.js"
import * as Tidemark from "../../Tidemark.js"
import { formatDuration } from "../../util/humanDuration.js"
import { interruptOn } from "../../util/interruptOn.js"
import { dbOptions, withDatabase } from "../DbOptions.js"
import * as Flags from "../flags.js"
import { PartialRun } from "../PartialRun.js"
import * as ProgressReporter from "../ProgressReporter.js"

const options = {
  ...dbOptions,
  path: Args.directory({ name: "PATH", exists: "yes" }).pipe(
    Args.withDescription("The folder or git repository to sync.")
  ),
  source: Options.text("source").pipe(
    Options.withDescription("Name of the source (default: the folder's absolute path)."),
    Options.optional
  ),
  git: Options.boolean("git").pipe(
    Options.withDescription("Sync PATH as a git repository (the default when PATH has a .git).")
  ),
  ref: Options.text("ref").pipe(
    Options.withDescription("Git: the branch, tag or commit to sync (default HEAD). Implies --git."),
    Options.optional
  ),
  leaseTtl: Flags.duration(
    "lease-ttl",
    "How long the source's lease outlives a holder that stopped renewing it (hung, or on a lost host) before another sync may take over (default 30s).",
    "3 millis"
  ).pipe(
    Options.mapEffect((ttl) =>
      Option.match(ttl, {
        onNone: () => Effect.succeed(Option.none<LeaseTimings.LeaseTimings>()),
        onSome: (value) =>
          Either.match(LeaseTimings.fromTtl(value), {
            onLeft: (invalid) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--lease-ttl: ${invalid.reason}`))),
            onRight: (timings) => Effect.succeed(Option.some(timings))
          })
      })
    )
  ),
  stateFlushEvery: Flags.duration(
    "state-flush-every",
    "How often the progress shown by `tidemark status` is saved while syncing (default 30s).",
    "100 millis"
  ),
  timeout: Flags.duration(
    "timeout",
    "Stop cooperatively after this long (e.g. 90s, 5m), saving progress: exit 75.",
    "1 millis"
  ),
  concurrency: Flags.integerIn("concurrency", "Files read at once.", { min: 1, max: 64 }).pipe(Options.withDefault(4)),
  json: Options.boolean("json").pipe(
    Options.withDescription("Progress as JSON lines on stderr, the result as JSON on stdout.")
  ),
  wait: Options.boolean("wait").pipe(
    Options.withDescription("If another sync of this source runs, wait for it (up to 1 hour) instead of skipping.")
  ),
  dryRun: Options.boolean("dry-run").pipe(
    Options.withDescription("Print what would be imported and deleted; write nothing.")
  ),
  allowMassChange: Options.boolean("allow-mass-change").pipe(
    Options.withDescription("Allow importing or deleting more than max(20% of the documents, 50) in one sync.")
  ),
  include: Options.text("include").pipe(
    Options.withDescription("Glob of files to sync (repeatable; default all)."),
    Options.repeated
  ),
  exclude: Options.text("exclude").pipe(
    Options.withDescription("Glob to leave out (repeatable; .git/ and node_modules/ always are)."),
    Options.repeated
  ),
  maxSizeMb: Flags.integerIn("max-size-mb", "Larger files are item errors.", { min: 1, max: 1024 }).pipe(
    Options.withDefault(10)
  )
}

export const syncCommand = Command.make("sync", options, (flags) =>
  Effect.gen(function* () {
    const { leaseTtl: leaseTimings, stateFlushEvery, timeout } = flags
    const root = path.resolve(flags.path)
    const sourceId = Option.getOrElse(flags.source, () => root)
    const maxBytes = flags.maxSizeMb * 1024 * 1024
    const source =
      flags.git || Option.isSome(flags.ref) || fs.existsSync(path.join(root, ".git"))
        ? yield* GitSource.make(root, {
            ref: Option.getOrElse(flags.ref, () => GitSource.defaultGitOptions.ref),
            include: flags.include.length > 0 ? flags.include : GitSource.defaultGitOptions.include,
            exclude: [...GitSource.defaultGitOptions.exclude, ...flags.exclude],
            maxBytes
          })
        : yield* DirSource.make(root, {
            include: flags.include.length > 0 ? flags.include : DirSource.defaultDirOptions.include,
            exclude: [...DirSource.defaultDirOptions.exclude, ...flags.exclude],
            maxBytes
          })
    const progress = yield* Ref.make(initialProgress)
    yield* ProgressReporter.start(progress, ProgressReporter.modeFor(flags.json))
    const sync = SyncProgram.run({
      sourceId,
      source,
      concurrency: flags.concurrency,
      dryRun: flags.dryRun,
      allowMassChange: flags.allowMassChange,
      progress,
      ...(flags.wait ? { wait: Duration.hours(1) } : {}),
      ...Option.match(leaseTimings, { onNone: () => ({}), onSome: (timings) => ({ leaseTimings: timings }) }),
      ...Option.match(stateFlushEvery, {
        onNone: () => ({}),
        onSome: (flushEvery) => ({ runStatePolicy: { ...RunState.defaultRunStatePolicy, flushEvery } })
      })
    })
    const banked = Effect.map(Ref.get(progress), (p) => p.banked)
    const partial = (reason: string) =>
      Effect.flatMap(banked, (n) => Effect.fail(new PartialRun({ reason, banked: n })))
    // The timer says when it fires, before the batches in flight finish: a caller (a test)
    // can see the moment the sync stops taking new work.
    const stopAt = (duration: Duration.Duration) =>
      Effect.sleep(duration).pipe(
        Effect.zipRight(
          Effect.logWarning(`--timeout ${formatDuration(duration)} reached: stopping after the batches in flight`)
        ),
        Effect.zipRight(partial(`stopped after --timeout ${formatDuration(duration)}`))
      )
    const bounded = (Option.isSome(timeout) ? interruptOn(sync, stopAt(timeout.value)) : sync).pipe(
      // The count once the batches in flight are banked.
      Effect.catchTag("PartialRun", (stopped) => partial(stopped.reason)),
      // A run that held the lease and lost it stops with its progress saved: partial, never a skip.
      Effect.catchTag("LockLost", (lost) => partial(lost.message)),
      Effect.onInterrupt(() =>
        Effect.flatMap(banked, (n) => Effect.logWarning(`interrupted: ${n} items banked, rerun to continue`))
      )
    )
    const summary = yield* bounded.pipe(
      Effect.map(Option.some),
      Effect.catchTag("LockBusy", (busy) =>
        Effect.as(
          flags.json
            ? Console.log(
                JSON.stringify({ skipped: true, reason: "already running", holderPid: busy.pid, holderHost: busy.host })
              )
            : Console.log(`already running: ${busy.message}; skipped`),
          Option.none()
        )
      )
    )
    if (Option.isNone(summary)) return
    const s = summary.value
    if (flags.json) return yield* Console.log(JSON.stringify(s))
    const verb = s.dryRun ? "would import" : "imported"
    const at = s.target.commit === undefined ? "" : ` at ${s.target.commit.slice(0, 12)}`
    yield* Console.log(
      `${s.dryRun ? "dry run of" : "synced"} ${s.sourceId}${at}: ${verb} ${s.imported}, ${s.dryRun ? "would delete" : "deleted"} ${s.deleted}, ${s.failed} failed, ${s.unchanged} unchanged${s.resumed ? ` (resumed op ${s.opId}, restart ${s.restarts})` : ""}`
    )
    if (s.failed > 0)
      yield* Console.log(
        `  ${s.failed} items failed: see \`tidemark status\`; ${source.kind === "git" ? "they are retried when a commit changes them" : "they are retried by every sync"}`
      )
  }).pipe(Effect.scoped, Effect.provide(Tidemark.servicesPg), withDatabase(flags))
).pipe(
  Command.withDescription(
    "Sync a folder or a git repository into PostgreSQL; resumes where an interrupted sync stopped."
  )
)
