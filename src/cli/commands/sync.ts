/**
 * `tidemark sync PATH`: a folder, a git repository (PATH has a .git, or
 * --git), or append-only JSONL files (--jsonl). Every kind runs under the
 * source's lease with the same bounds (`RunBounded`) and reports its summary
 * on stdout (JSON with --json).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Command } from "@effect/cli"
import { Console, Duration, Effect, Option, Ref } from "effect"
import { defaultEntryFields, fieldPath } from "../../source/jsonl/Entry.js"
import * as OpenSource from "../../sync/OpenSource.js"
import * as JsonlSync from "../../source/jsonl/JsonlSync.js"
import { initialProgress } from "../../sync/Progress.js"
import * as RunState from "../../state/RunState.js"
import * as SyncProgram from "../../sync/SyncProgram.js"
import * as Tidemark from "../../Tidemark.js"
import { withDatabase } from "../DbOptions.js"
import * as ProgressReporter from "../ProgressReporter.js"
import { syncOptions } from "../sync/SyncOptions.js"
import { runBounded } from "../sync/RunBounded.js"
import type { Lease } from "../../lock/LeaseLock.js"
import * as Watching from "../sync/Watching.js"
import { UsageError } from "../UsageError.js"
import { printJsonlSummary, printSummary } from "../sync/Summary.js"
import * as Payer from "../../maintenance/Payer.js"
import { startPayer } from "../maintenance/Background.js"
import { describeReports, payerLayer } from "./maintain.js"

type Flags = Command.Command.ParseConfig<typeof syncOptions>

const common = (flags: Flags, progress: Ref.Ref<typeof initialProgress>) => ({
  dryRun: flags.dryRun,
  allowMassChange: flags.allowMassChange,
  progress,
  ...(flags.wait ? { wait: Duration.hours(1) } : {}),
  ...Option.match(flags.leaseTtl, { onNone: () => ({}), onSome: (timings) => ({ leaseTimings: timings }) }),
  ...Option.match(flags.stateFlushEvery, {
    onNone: () => ({}),
    onSome: (flushEvery) => ({ runStatePolicy: { ...RunState.defaultRunStatePolicy, flushEvery } })
  })
})

/** The sync's maintenance debt: paid by a payer in the background (at once), here (inline), or later (off). */
const afterSync = (flags: Flags, sourceId: string, dryRun: boolean) =>
  Effect.gen(function* () {
    if (dryRun) return
    if (flags.maintenance === "background") return yield* startPayer(sourceId, { starterExits: true })
    if (flags.maintenance === "inline") {
      // A line per committed batch, with the kind's running total.
      const totals = new Map<string, number>()
      const reports = yield* Payer.payDue(sourceId, {
        onDone: (_, kind, items) => {
          const total = (totals.get(kind) ?? 0) + items
          totals.set(kind, total)
          return Effect.log(`maintenance: ${kind}, ${total} done`)
        }
      }).pipe(Effect.provide(payerLayer))
      // On stderr: stdout carries the sync's result.
      for (const line of describeReports(reports)) yield* Console.error(`tidemark: maintenance ${line}`)
    }
  })

export const syncCommand = Command.make("sync", syncOptions, (flags) =>
  Effect.gen(function* () {
    const root = path.resolve(flags.path)
    const sourceId = Option.getOrElse(flags.source, () => root)
    const maxBytes = flags.maxSizeMb * 1024 * 1024
    const progress = yield* Ref.make(initialProgress)
    const progressMode = ProgressReporter.modeFor(flags.json)
    const bounds = { timeout: flags.timeout, json: flags.json, progress }
    if (flags.watch && flags.dryRun) {
      return yield* new UsageError({ message: "--watch and --dry-run do not go together", hint: "drop one of them" })
    }
    // A watch shows the progress of its first round only: the others are one line each.
    if (!flags.watch) yield* ProgressReporter.start(progress, progressMode)
    const watching = <E extends { readonly _tag: string }, R>(
      watched: Watching.Watched,
      round: (lease: Lease, p: Ref.Ref<typeof initialProgress>) => Effect.Effect<Watching.RoundSummary, E, R>
    ) =>
      runBounded(
        Watching.run({
          sourceId,
          watched,
          json: flags.json,
          maintenance: flags.maintenance,
          timings: Watching.timingsOf(flags),
          lease: common(flags, progress),
          progress,
          round,
          aroundFirst: (first, p) => Effect.scoped(Effect.zipRight(ProgressReporter.start(p, progressMode), first))
        }),
        { ...bounds, interrupted: () => "watch stopped" }
      )
    if (flags.jsonl) {
      const jsonlOptions = (p: Ref.Ref<typeof initialProgress>): JsonlSync.JsonlOptions => ({
        sourceId,
        root,
        selection: OpenSource.jsonlSelection(flags),
        fields: {
          idField: Option.match(flags.idField, { onNone: () => null, onSome: fieldPath }),
          messageFields: Option.match(flags.messageField, {
            onNone: () => defaultEntryFields.messageFields,
            onSome: (field) => [fieldPath(field)]
          })
        },
        maxLineBytes: maxBytes,
        mirror: flags.mirror,
        concurrency: Math.min(flags.concurrency, 8),
        ...common(flags, p)
      })
      if (flags.watch) {
        yield* watching(Watching.logs(root), (lease, p) => JsonlSync.runWithLease(jsonlOptions(p), p, lease))
        return
      }
      const summary = yield* runBounded(JsonlSync.run(jsonlOptions(progress)), bounds)
      if (Option.isNone(summary)) return
      yield* flags.json
        ? Effect.zipRight(ProgressReporter.end, Console.log(JSON.stringify(summary.value)))
        : printJsonlSummary(summary.value)
      return yield* afterSync(flags, sourceId, summary.value.dryRun)
    }
    if (!fs.statSync(root).isDirectory()) {
      return yield* new UsageError({
        message: `${root} is a file`,
        hint: "sync a folder or a repository; for a JSONL file, add --jsonl"
      })
    }
    const git = flags.git || Option.isSome(flags.ref) || fs.existsSync(path.join(root, ".git"))
    const selection = { include: flags.include, exclude: flags.exclude, maxBytes }
    const source = git
      ? yield* OpenSource.repository(root, Option.getOrUndefined(flags.ref), selection)
      : yield* OpenSource.folder(root, selection)
    const syncOptions = (p: Ref.Ref<typeof initialProgress>): SyncProgram.SyncOptions => ({
      sourceId,
      source,
      concurrency: flags.concurrency,
      ...common(flags, p),
      ...Option.match(flags.searchConfig, { onNone: () => ({}), onSome: (searchConfig) => ({ searchConfig }) })
    })
    if (flags.watch) {
      const watched = git ? yield* Watching.repository(root) : Watching.folder(root)
      yield* watching(watched, (lease, p) => SyncProgram.runWithLease(syncOptions(p), p, lease))
      return
    }
    const summary = yield* runBounded(SyncProgram.run(syncOptions(progress)), bounds)
    if (Option.isNone(summary)) return
    yield* flags.json
      ? Effect.zipRight(ProgressReporter.end, Console.log(JSON.stringify(summary.value)))
      : printSummary(summary.value, source.kind === "git" ? "git" : "dir")
    return yield* afterSync(flags, sourceId, summary.value.dryRun)
  }).pipe(Effect.scoped, Effect.provide(Tidemark.servicesPg), withDatabase(flags))
).pipe(
  Command.withDescription(
    "Sync a folder, a git repository or JSONL logs into PostgreSQL; resumes where an interrupted sync stopped."
  )
)
