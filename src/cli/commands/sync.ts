import * as fs from "node:fs"
import * as path from "node:path"
import { Args, Command, Options } from "@effect/cli"
import { Console, Duration, Effect, Either, Layer, Option, Ref } from "effect"
import * as PgRunStateStore from "../../state/PgRunStateStore.js"
import * as PgCheckpointStore from "../../checkpoint/PgCheckpointStore.js"
import * as DocumentsSink from "../../sink/DocumentsSink.js"
import * as LeaseLock from "../../lock/LeaseLock.js"
import * as LeaseTimings from "../../lock/LeaseTimings.js"
import * as PgLeaseStore from "../../lock/PgLeaseStore.js"
import * as DirSource from "../../source/DirSource.js"
import * as GitSource from "../../source/git/GitSource.js"
import { initialProgress } from "../../sync/Progress.js"
import * as RunState from "../../state/RunState.js"
import * as SyncProgram from "../../sync/SyncProgram.js"
import { dbOptions, withDatabase } from "../DbOptions.js"
import { PartialRun } from "../PartialRun.js"
import * as ProgressReporter from "../ProgressReporter.js"
import { UsageError } from "../UsageError.js"

const syncLayer = Layer.mergeAll(
  LeaseLock.layer.pipe(Layer.provide(PgLeaseStore.layer)),
  PgCheckpointStore.layer,
  PgRunStateStore.layer,
  DocumentsSink.layer
)

const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (match === null) return Option.none()
  const value = Number(match[1])
  const unit = match[2] ?? "s"
  return Option.some(
    unit === "ms"
      ? Duration.millis(value)
      : unit === "m"
        ? Duration.minutes(value)
        : unit === "h"
          ? Duration.hours(value)
          : Duration.seconds(value)
  )
}

/** A duration flag: none when absent, a usage error unless it is a duration of at least `min`. */
const durationFlag = (flag: string, value: Option.Option<string>, hint: string, min = Duration.zero) =>
  Option.match(value, {
    onNone: () => Effect.succeed(Option.none<Duration.Duration>()),
    onSome: (text) =>
      Option.match(
        Option.filter(parseDuration(text), (duration) => !Duration.lessThan(duration, min)),
        {
          onNone: () =>
            Effect.fail(
              new UsageError({
                message: `--${flag} ${text} is not a duration${Duration.greaterThan(min, Duration.zero) ? ` of at least ${Duration.format(min)}` : ""}`,
                hint
              })
            ),
          onSome: (duration) => Effect.succeed(Option.some(duration))
        }
      )
  })

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
  leaseTtl: Options.text("lease-ttl").pipe(
    Options.withDescription(
      "How long the source's lease outlives a holder that stopped renewing it (hung, or on a lost host) before another sync may take over (default 30s)."
    ),
    Options.optional
  ),
  stateFlushEvery: Options.text("state-flush-every").pipe(
    Options.withDescription("How often the progress shown by `tidemark status` is saved while syncing (default 30s)."),
    Options.optional
  ),
  timeout: Options.text("timeout").pipe(
    Options.withDescription("Stop cooperatively after this long (e.g. 90s, 5m), saving progress: exit 75."),
    Options.optional
  ),
  concurrency: Options.integer("concurrency").pipe(
    Options.withDescription("Files read at once."),
    Options.withDefault(4)
  ),
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
  maxSizeMb: Options.integer("max-size-mb").pipe(
    Options.withDescription("Larger files are item errors."),
    Options.withDefault(10)
  )
}

export const syncCommand = Command.make("sync", options, (flags) =>
  Effect.gen(function* () {
    const stateFlushEvery = yield* durationFlag(
      "state-flush-every",
      flags.stateFlushEvery,
      "use e.g. 10s or 1m",
      Duration.millis(100)
    )
    const leaseTtl = yield* durationFlag("lease-ttl", flags.leaseTtl, "use e.g. 30s or 2m")
    const leaseTimings = yield* Option.match(leaseTtl, {
      onNone: () => Effect.succeed(Option.none<LeaseTimings.LeaseTimings>()),
      onSome: (ttl) =>
        Either.match(LeaseTimings.fromTtl(ttl), {
          onLeft: (invalid) =>
            Effect.fail(
              new UsageError({
                message: `--lease-ttl ${Option.getOrElse(flags.leaseTtl, () => "")}: ${invalid.reason}`,
                hint: "use e.g. 30s"
              })
            ),
          onRight: (timings) => Effect.succeed(Option.some(timings))
        })
    })
    const timeout = yield* durationFlag("timeout", flags.timeout, "use e.g. 90s, 5m or 1h")
    if (flags.concurrency < 1 || flags.concurrency > 64) {
      return yield* new UsageError({
        message: `--concurrency ${flags.concurrency} is out of range`,
        hint: "use 1 to 64"
      })
    }
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
    }).pipe(
      Effect.onInterrupt(() =>
        Effect.flatMap(Ref.get(progress), (p) =>
          Effect.logWarning(`interrupted: ${p.banked} items banked, rerun to continue`)
        )
      )
    )
    const bounded = Option.match(timeout, {
      onNone: () => sync,
      onSome: (duration) =>
        sync.pipe(
          Effect.timeoutFail({
            duration,
            onTimeout: () =>
              new PartialRun({ reason: `stopped after --timeout ${Duration.format(duration)}`, banked: 0 })
          }),
          Effect.catchTag("PartialRun", (partial) =>
            Effect.flatMap(Ref.get(progress), (p) =>
              Effect.fail(new PartialRun({ reason: partial.reason, banked: p.banked }))
            )
          )
        )
    })
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
  }).pipe(Effect.scoped, Effect.provide(syncLayer), withDatabase(flags))
).pipe(
  Command.withDescription(
    "Sync a folder or a git repository into PostgreSQL; resumes where an interrupted sync stopped."
  )
)
