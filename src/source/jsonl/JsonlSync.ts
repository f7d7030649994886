/**
 * One sync of a JSONL source, exactly once: under the source's lease, as one
 * op, every file's entries written with its checkpoint in one fenced step.
 *
 *   list the files → match them to the stored streams (`Match`) → guard (a
 *   listing that is empty while streams exist; deletions with --mirror) →
 *   bring each changed file up to date (`FileSync`), a few at a time → mark
 *   streams whose file is gone (or delete them, --mirror) → finish the op.
 *
 * Transient failures retry inside the lease (`UnderLease`), and the per-file
 * checkpoints make each retry continue where the last write left off. A dry
 * run goes through the same steps with a writer that writes nothing.
 */
import * as fs from "node:fs"
import { Effect, Ref } from "effect"
import * as CheckpointModule from "../../checkpoint/Checkpoint.js"
import { EntriesStore, type PathTaken, type Stream, type StreamWrite } from "../../entries/EntriesStore.js"
import type { Lease } from "../../lock/LeaseLock.js"
import type { LeaseTimings } from "../../lock/LeaseTimings.js"
import { OpsStore } from "../../ops/OpsStore.js"
import { ItemErrorStore, type ItemErrorRow } from "../../quarantine/ItemErrorStore.js"
import type { RunStatePolicy } from "../../state/RunState.js"
import { isMassChange, massChangeLimit, MassChangeRefused } from "../../sync/MassChange.js"
import { initialProgress, type Progress, sampleSize } from "../../sync/Progress.js"
import * as RunStateTracking from "../../sync/RunStateTracking.js"
import type { SyncSummary } from "../../sync/SyncProgram.js"
import { underLease } from "../../sync/UnderLease.js"
import type { EntryFields } from "./Entry.js"
import {
  continues,
  type FileContext,
  type FileReport,
  type FileWriter,
  fingerprintLength,
  fingerprintOf,
  importNew,
  reconcile,
  syncTail
} from "./FileSync.js"
import * as JsonlFiles from "./JsonlFiles.js"
import { type FileAction, match } from "./Match.js"
import { FileReadFailed, open, reasonOf } from "./Lines.js"

export interface JsonlOptions {
  readonly sourceId: string
  /** A folder of JSONL files, or one file. */
  readonly root: string
  readonly selection?: JsonlFiles.FileSelection
  readonly fields: EntryFields
  /** Longer lines are item errors. */
  readonly maxLineBytes: number
  /** Delete the entries of files that are gone (under the mass-change guard), instead of marking them gone. */
  readonly mirror?: boolean
  readonly dryRun?: boolean
  readonly allowMassChange?: boolean
  /** Files synced at once (default 2). */
  readonly concurrency?: number
  readonly wait?: import("effect").Duration.DurationInput
  readonly leaseTimings?: LeaseTimings
  readonly progress?: Ref.Ref<Progress>
  readonly runStatePolicy?: RunStatePolicy
  readonly flushPolicy?: CheckpointModule.FlushPolicy
}

export interface JsonlSummary extends SyncSummary {
  /** Bytes read of the files, first lines and anchors included. */
  readonly bytesRead: number
  /** Files by the path their sync took. */
  readonly paths: Readonly<Record<PathTaken, number>>
  /** Every file that was not unchanged, with what happened to it. */
  readonly files: ReadonlyArray<FileReport>
  /** Streams whose file is gone (marked, or deleted with --mirror). */
  readonly gone: ReadonlyArray<string>
  /** Entries deleted with their files (--mirror). */
  readonly entriesDeleted: number
  /** New entries left for later syncs by the flood cap, over all files. */
  readonly backlog: number
  /** Files whose last line is still being written. */
  readonly pendingTails: number
}

const countPaths = (reports: ReadonlyArray<FileReport>, unchanged: number) => {
  const paths: Record<PathTaken, number> = { unchanged, tail: 0, reconcile: 0, new: 0 }
  for (const report of reports) paths[report.took]++
  return paths
}

/** Reads what the match needs of the files that are not unchanged: first lines and anchors. */
const goesOnTable = (
  files: ReadonlyArray<JsonlFiles.ListedFile>,
  streams: ReadonlyArray<Stream>,
  options: JsonlOptions
) =>
  Effect.gen(function* () {
    const fingerprints = new Map<string, string | null>()
    const pairs = new Set<string>()
    const unreadable = new Map<string, string>()
    let bytesRead = 0
    for (const file of files) {
      const atPath = streams.find((s) => s.path === file.key && !s.gone)
      if (
        atPath !== undefined &&
        atPath.size === file.size &&
        atPath.mtimeUs === file.mtimeUs &&
        !atPath.racy &&
        atPath.backlog === 0
      )
        continue
      yield* Effect.scoped(
        Effect.gen(function* () {
          const fd = yield* open(file.absolute)
          const known = streams.find((s) => s.path === file.key)?.fingerprint ?? null
          const { fingerprint, read } = yield* fingerprintOf(
            file.absolute,
            fd,
            options.maxLineBytes,
            fingerprintLength(known)
          )
          fingerprints.set(file.key, fingerprint)
          bytesRead += read
          for (const stream of streams) {
            if (stream.fingerprint !== fingerprint || fingerprint === null) continue
            const check = yield* continues(file.absolute, fd, stream, file, fingerprint)
            bytesRead += check.read
            if (check.goesOn) pairs.add(`${file.key}\u0000${stream.stream}`)
          }
        })
      ).pipe(
        Effect.catchTag("FileReadFailed", (failure) => Effect.sync(() => unreadable.set(file.key, failure.reason)))
      )
    }
    return { fingerprints, pairs, unreadable, bytesRead }
  })

const attempt = (options: JsonlOptions, progress: Ref.Ref<Progress>, lease: Lease | null) =>
  Effect.scoped(
    Effect.gen(function* () {
      const ops = yield* OpsStore
      const entries = yield* EntriesStore
      const errorStore = yield* ItemErrorStore
      const { sourceId } = options
      const fence = lease?.fence ?? Effect.void
      const dry = lease === null
      const op = dry ? null : yield* ops.openOrResume(sourceId, lease.token, fence).pipe(Effect.tap(() => Effect.void))
      const checkpoint = op === null ? null : yield* CheckpointModule.make(op.id, op.banked, options.flushPolicy)
      let tracking: RunStateTracking.Tracking | undefined
      if (op !== null && lease !== null) {
        if (op.target === null) yield* ops.recordTarget(op.id, { kind: "jsonl" }, fence)
        tracking = yield* RunStateTracking.track({
          sourceId,
          op,
          target: { kind: "jsonl" },
          progress,
          ...(options.runStatePolicy === undefined ? {} : { policy: options.runStatePolicy })
        })
      }
      yield* Ref.update(progress, (p): Progress => ({ ...p, phase: "planning" }))

      const listing = JsonlFiles.list(options.root, options.selection)
      const streams = yield* entries.streams(sourceId)
      const recorded = new Set(yield* errorStore.keys(sourceId))
      const table = yield* goesOnTable(listing.files, streams, options)
      const readable = listing.files.filter((file) => !table.unreadable.has(file.key))
      const matched = match(readable, streams, (file, stream) => table.pairs.has(`${file.key}\u0000${stream.stream}`), [
        ...listing.unlisted,
        ...table.unreadable.keys()
      ])
      const present = streams.filter((s) => !s.gone)
      yield* Ref.update(progress, (p) => ({ ...p, seen: listing.files.length }))

      // The guard: an empty listing while files are stored looks like an unmounted folder.
      const deleting = options.mirror
        ? yield* Effect.forEach(matched.gone, (s) => entries.count(sourceId, s.stream))
        : []
      const deletes = deleting.reduce((a, b) => a + b, 0)
      const existing = options.mirror ? yield* entries.count(sourceId) : present.length
      const size = {
        complete: true,
        existing,
        seen: listing.files.length,
        moved: 0,
        deletes: options.mirror ? deletes : listing.files.length === 0 ? matched.gone.length : 0
      }
      if (!options.allowMassChange && isMassChange(size, false)) {
        return yield* new MassChangeRefused({
          sourceId,
          existing,
          imports: 0,
          deletes: size.deletes,
          limit: massChangeLimit(existing),
          noun: options.mirror ? "entries" : "files"
        })
      }

      // Listing problems and unreadable files are item errors (keyed by path); others of theirs are cleared.
      const fileProblems: Array<ItemErrorRow> = [
        ...listing.problems.map((p) => ({ key: p.key, version: null, error: p.reason })),
        ...[...table.unreadable].map(([key, reason]) => ({ key, version: null, error: reason }))
      ]
      const listedKeys = new Set(listing.files.map((f) => f.key))
      const goneKeys = new Set(matched.gone.map((s) => s.path))
      const resolvedFiles = [...recorded].filter((key) => {
        const file = key.replace(/:\d+$/, "")
        return (goneKeys.has(file) && !listedKeys.has(file)) || (listedKeys.has(key) && !table.unreadable.has(key))
      })
      if (!dry && (fileProblems.length > 0 || resolvedFiles.length > 0)) {
        yield* errorStore.record(sourceId, { resolved: resolvedFiles, errors: fileProblems }, fence)
      }

      const work = matched.actions.filter((a) => a._tag !== "Unchanged")
      yield* Ref.update(progress, (p): Progress => ({
        ...p,
        phase: "importing",
        toImport: work.length,
        failed: p.failed + fileProblems.length,
        planned: work.length
      }))
      if (op !== null && lease !== null) yield* ops.recordPlanned(op.id, op.banked + work.length, fence)

      const writerFor = (path: string): FileWriter => ({
        write: (write: StreamWrite) =>
          dry ? Effect.succeed(write.stream ?? -1) : entries.write(sourceId, write, fence),
        present: (stream) => (stream < 0 ? Effect.succeed([]) : entries.present(sourceId, stream)),
        errors: (rows, clearOthers) => {
          if (dry) return Effect.void
          const resolved = clearOthers
            ? [...recorded].filter((key) => key.startsWith(`${path}:`) && !rows.some((row) => row.key === key))
            : []
          return rows.length === 0 && resolved.length === 0
            ? Effect.void
            : errorStore.record(sourceId, { resolved, errors: rows }, fence)
        },
        imported: (count, bytes) =>
          Ref.update(progress, (p) => ({ ...p, imported: p.imported + count, bytes: p.bytes + bytes }))
      })
      const syncOne = (action: FileAction) =>
        Effect.scoped(
          Effect.gen(function* () {
            const ctx: FileContext = {
              fields: options.fields,
              maxLineBytes: options.maxLineBytes,
              allowMassChange: options.allowMassChange ?? false,
              writer: writerFor(action.file.key)
            }
            const fd = yield* open(action.file.absolute)
            const fingerprint = table.fingerprints.get(action.file.key) ?? null
            const report =
              action._tag === "New"
                ? yield* importNew(action.file, fd, fingerprint, ctx)
                : action._tag === "Tail"
                  ? yield* syncTail(action.file, fd, action.stream, fingerprint, ctx, action.movedFrom)
                  : yield* reconcile(action.file, fd, action.stream, fingerprint, ctx)
            if (checkpoint !== null) {
              yield* checkpoint.bank([{ key: action.file.key, version: `${action.file.size}:${action.file.mtimeUs}` }])
            }
            yield* Ref.update(progress, (p) => ({
              ...p,
              read: p.read + 1,
              banked: p.banked + 1,
              failed: p.failed + report.errors
            }))
            return report
          })
        ).pipe(
          // A file that vanished or became unreadable since it was listed: an item error; the rest go on.
          Effect.catchTag("FileReadFailed", (failure: FileReadFailed) =>
            Effect.as(
              dry
                ? Effect.void
                : errorStore.record(
                    sourceId,
                    { resolved: [], errors: [{ key: action.file.key, version: null, error: failure.reason }] },
                    fence
                  ),
              undefined
            )
          )
        )
      const reports = (yield* Effect.forEach(work, syncOne, { concurrency: options.concurrency ?? 2 })).filter(
        (r): r is FileReport => r !== undefined
      )

      yield* Ref.update(progress, (p): Progress => ({ ...p, phase: "deleting" }))
      let entriesDeleted = 0
      if (!dry) {
        const ids = matched.gone.map((s) => s.stream)
        if (options.mirror) entriesDeleted = yield* entries.remove(sourceId, ids, fence)
        else yield* entries.markGone(sourceId, ids, fence)
      }
      yield* Ref.update(progress, (p): Progress => ({ ...p, deleted: matched.gone.length, phase: "finishing" }))
      if (checkpoint !== null && op !== null) {
        yield* checkpoint.flush
        yield* ops.finish(sourceId, op.id, { kind: "jsonl", syncedOp: op.id }, fence)
        yield* checkpoint.discard
        if (tracking !== undefined) yield* tracking.complete
      }
      const final = yield* Ref.get(progress)
      const unchanged = matched.actions.length - work.length
      // The files entries came (or would come) from, and the files gone: all in a dry run, the first few otherwise.
      const importedFrom = reports.filter((r) => r.imported > 0).map((r) => r.path)
      const gonePaths = matched.gone.map((s) => s.path)
      const names = dry
        ? { wouldImport: importedFrom, wouldDelete: gonePaths }
        : { firstImported: importedFrom.slice(0, sampleSize), firstDeleted: gonePaths.slice(0, sampleSize) }
      return {
        sourceId,
        dryRun: dry,
        target: {},
        opId: op?.id ?? null,
        resumed: op?.resumed ?? false,
        restarts: op?.restarts ?? 0,
        seen: listing.files.length,
        unchanged,
        read: final.read,
        imported: final.imported,
        deleted: matched.gone.length,
        failed: final.failed,
        recovered: final.retries,
        bytesRead: table.bytesRead + reports.reduce((n, r) => n + r.bytesRead, 0),
        paths: countPaths(reports, unchanged),
        files: reports,
        gone: matched.gone.map((s) => s.path),
        entriesDeleted,
        backlog: reports.reduce((n, r) => n + r.backlog, 0),
        pendingTails: reports.filter((r) => r.pendingTail).length,
        ...names
      } satisfies JsonlSummary
    })
  )

export const run = Effect.fn("JsonlSync.run")(function* (options: JsonlOptions) {
  const progress = options.progress ?? (yield* Ref.make(initialProgress))
  if (!fs.existsSync(options.root)) {
    return yield* new FileReadFailed({
      path: options.root,
      reason: reasonOf({ code: "ENOENT", message: "no such file or folder" })
    })
  }
  if (options.dryRun) return yield* attempt(options, progress, null)
  return yield* underLease(options.sourceId, options, progress, (lease) => runWithLease(options, progress, lease))
})

/** One attempt under a lease the caller holds (a watch holds one for all its rounds). */
export const runWithLease = (options: JsonlOptions, progress: Ref.Ref<Progress>, lease: Lease) =>
  Effect.flatMap(OpsStore, (ops) =>
    Effect.zipRight(
      ops.ensureSource({ id: options.sourceId, kind: "jsonl", root: options.root, sink: "entries" }, lease.fence),
      attempt(options, progress, lease)
    )
  )
