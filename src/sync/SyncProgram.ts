/**
 * One sync of a source, resumable at every point:
 *
 *   lease → open or resume the op → plan (skip what is unchanged or already
 *   banked, without reading it) → mass-change guard → import with bounded
 *   concurrency, batch-written under the lease's fence, banked after commit →
 *   deletions → finish (watermark, close the op, clear its items).
 *
 * It runs under the source's lease (`UnderLease`): transient failures retry
 * the work inside it, resuming from what was written and banked; a lost lease
 * ends the run with `LockLost`. Per-item problems are recorded as item errors
 * and never stop the sync; every later sync tries them again.
 */
import { Cause, type Duration, Effect, Fiber, Metric, Ref } from "effect"
import type * as Checkpoint from "../checkpoint/Checkpoint.js"
import * as CheckpointModule from "../checkpoint/Checkpoint.js"
import type { Lease } from "../lock/LeaseLock.js"
import type { LeaseTimings } from "../lock/LeaseTimings.js"
import { OpsStore } from "../ops/OpsStore.js"
import { nameOf, nounOf, Sink } from "../sink/Sink.js"
import type { Source, Target } from "../source/Source.js"
import type { RunStatePolicy } from "../state/RunState.js"
import { interruptOn } from "../util/interruptOn.js"
import * as Apply from "./Apply.js"
import { isMassChange, massChangeLimit, MassChangeRefused } from "./MassChange.js"
import * as Plan from "./Plan.js"
import { emptySample, initialProgress, type KeySample, type Progress } from "./Progress.js"
import * as RunStateTracking from "./RunStateTracking.js"
import { underLease } from "./UnderLease.js"
import * as Metrics from "../telemetry/Metrics.js"
import { recordErrorTag } from "../telemetry/Spans.js"

export { MassChangeRefused } from "./MassChange.js"

export interface SyncOptions {
  readonly sourceId: string
  readonly source: Source
  /** Batches read at once (default 4). */
  readonly concurrency?: number
  readonly dryRun?: boolean
  readonly allowMassChange?: boolean
  /** Wait this long for a busy lease instead of failing with `LockBusy` at once. */
  readonly wait?: Duration.DurationInput
  /** Where progress is reported while the sync runs (one is made when absent). */
  readonly progress?: Ref.Ref<Progress>
  readonly flushPolicy?: Checkpoint.FlushPolicy
  readonly runStatePolicy?: RunStatePolicy
  /** How long a holder that stopped renewing keeps the source's lease (default ttl 30 s). */
  readonly leaseTimings?: LeaseTimings
  /** The text search configuration of the source's search vectors (recorded with the source; default simple). */
  readonly searchConfig?: string
  /**
   * A first import plans at most this many items before it starts importing while the
   * listing goes on (default 50,000): such an import has no total and no ETA until its
   * listing ends, but never holds every item of a large tree.
   */
  readonly planAhead?: number
}

export interface SyncSummary {
  readonly sourceId: string
  readonly dryRun: boolean
  /** Where the sync went (git: the commit). */
  readonly target: Target
  readonly opId: number | null
  readonly resumed: boolean
  readonly restarts: number
  readonly seen: number
  readonly unchanged: number
  /** Items whose content was read (in this process, retries included). */
  readonly read: number
  readonly imported: number
  readonly deleted: number
  readonly failed: number
  /** Transient failures this process recovered from by resuming. */
  readonly recovered: number
  /** Dry run: every key it would import (new, changed, or a failed item's retry). */
  readonly wouldImport?: ReadonlyArray<string>
  /**
   * Dry run: every key it would read again only because it was modified within
   * the mtime tick of its last read; imported only if its content changed.
   */
  readonly wouldRecheck?: ReadonlyArray<string>
  /** Dry run: every key it would delete. */
  readonly wouldDelete?: ReadonlyArray<string>
  /** A real sync: the first 20 keys it imported (`imported` says how many in all). */
  readonly firstImported?: ReadonlyArray<string>
  /** A real sync: the first 20 keys it deleted (`deleted` says how many in all). */
  readonly firstDeleted?: ReadonlyArray<string>
}

const sameTarget = (a: Target, b: Target) => JSON.stringify(a) === JSON.stringify(b)

/**
 * One attempt under a lease the caller holds: a transient failure ends it, and
 * the next attempt resumes the op. `run` is this under `underLease`; a watch
 * runs it once per round under the lease it holds for the whole watch.
 */
export const runWithLease = (options: SyncOptions, progress: Ref.Ref<Progress>, lease: Lease) =>
  Effect.scoped(
    Effect.gen(function* () {
      const ops = yield* OpsStore
      const sink = yield* Sink
      const { sourceId, source } = options
      // What earlier attempts of this process did: the plan below sees it stored.
      const before = yield* Ref.get(progress)
      const sample = yield* Ref.make<KeySample>(emptySample)
      yield* ops.ensureSource(
        {
          id: sourceId,
          kind: source.kind,
          root: source.root,
          sink: nameOf(sink),
          ...(options.searchConfig === undefined ? {} : { searchConfig: options.searchConfig })
        },
        lease.fence
      )
      const op = yield* ops.openOrResume(sourceId, lease.token, lease.fence)
      yield* Effect.annotateCurrentSpan({ "tidemark.op": op.id, "tidemark.resumed": op.resumed })
      yield* Ref.update(progress, (p): Progress => ({ ...p, phase: "planning", restarts: op.restarts }))
      const checkpoint = yield* CheckpointModule.make(op.id, op.banked, options.flushPolicy)
      const target = yield* source.target(op.target)
      const moved = op.target !== null && !sameTarget(op.target, target)
      if (op.target === null || moved) yield* ops.recordTarget(op.id, target, lease.fence)
      const tracking = yield* RunStateTracking.track({
        sourceId,
        op,
        target,
        progress,
        ...(options.runStatePolicy === undefined ? {} : { policy: options.runStatePolicy })
      })
      // An op that had to move on no longer knows what its earlier target's writes
      // left behind: it reconciles against everything stored (banked items whose
      // version did not change are still skipped).
      const listing = yield* source.plan(target, moved ? null : op.base)
      const planning = yield* Plan.planning(sourceId, listing, op.banked > 0 ? op.id : null, progress, source)
      const recordPlanned = (rest: Plan.PlanRest) => {
        const planned = op.banked + rest.changedCount + rest.deletes.length
        return Effect.zipRight(
          ops.recordPlanned(op.id, planned, lease.fence),
          Ref.update(progress, (p) => ({ ...p, planned, listing: false }))
        )
      }
      // A large first import takes its items as the listing finds them (it never holds them
      // all); any other plan is made in full first, for the mass-change guard and the ETA.
      const first = planning.firstImport
        ? yield* Plan.firstImport(planning, options.planAhead ?? 50_000)
        : ({ _tag: "Whole", plan: yield* Plan.collect(planning) } as const)
      const work =
        first._tag === "Listing"
          ? yield* Effect.gen(function* () {
              yield* Ref.update(progress, (p): Progress => ({ ...p, phase: "importing", listing: true }))
              const { changes, rest } = yield* Plan.streamed(first.changes, planning)
              return { changes, failedKeys: planning.failedKeys, rest: Effect.tap(rest, recordPlanned) }
            })
          : yield* Effect.gen(function* () {
              const { plan } = first
              // Git plans a diff only from a watermark that is an ancestor of the target: a commit range.
              const commitRange = source.kind === "git" && listing._tag === "Delta"
              const size = { ...plan, deletes: plan.deletes.length, commitRange }
              if (!options.allowMassChange && isMassChange(size, op.resumed)) {
                return yield* new MassChangeRefused({
                  sourceId,
                  existing: plan.existing,
                  imports: plan.moved,
                  deletes: plan.deletes.length,
                  limit: massChangeLimit(plan.existing),
                  noun: nounOf(sink)
                })
              }
              yield* Ref.update(progress, (p): Progress => ({
                ...p,
                phase: "importing",
                toImport: plan.changed.length + plan.problems.length
              }))
              yield* recordPlanned(plan)
              return Apply.ofPlan(plan)
            })

      yield* interruptOn(
        Apply.apply(work, {
          sourceId,
          source,
          concurrency: options.concurrency ?? 4,
          progress,
          lease,
          checkpoint,
          sample
        }),
        checkpoint.failed
      )
      const plan = yield* work.rest
      const applied = yield* Ref.updateAndGet(progress, (p): Progress => ({ ...p, phase: "finishing" }))
      // The sink's own upkeep needs no lease: it runs while the op is closed.
      const upkeep = yield* Effect.fork(sink.afterSync?.(applied.imported + applied.deleted) ?? Effect.void)
      // Nothing may be banked into the op once it is closed: the pending items go
      // first (a flush already running is waited for), and whatever a failed flush
      // left is dropped with the op's other items.
      yield* checkpoint.flush
      yield* ops.finish(sourceId, op.id, { ...source.watermark(target), syncedOp: op.id }, lease.fence)
      yield* checkpoint.discard
      yield* tracking.complete
      yield* Fiber.join(upkeep)
      const final = yield* Ref.get(progress)
      const names = yield* Ref.get(sample)
      return {
        sourceId,
        dryRun: false,
        target,
        opId: op.id,
        resumed: op.resumed,
        restarts: op.restarts,
        seen: plan.seen + plan.problems.length,
        // Unchanged: listed, not changed, and not done by an earlier attempt; or re-checked and read the same.
        unchanged: Math.max(
          0,
          plan.seen -
            plan.changedCount -
            (before.imported + before.failed - before.listingFailed) +
            (final.rechecked - before.rechecked)
        ),
        read: final.read,
        imported: final.imported,
        deleted: final.deleted,
        failed: final.failed,
        recovered: final.retries,
        firstImported: names.imported,
        firstDeleted: names.deleted
      } satisfies SyncSummary
    })
  )

/** The plan, with every key it would import and delete, with nothing written and no lease taken. */
const dryRun = (options: SyncOptions, progress: Ref.Ref<Progress>) =>
  Effect.gen(function* () {
    const ops = yield* OpsStore
    const target = yield* options.source.target(null)
    const listing = yield* options.source.plan(target, yield* ops.watermarkOf(options.sourceId))
    const plan = yield* Effect.scoped(
      Effect.flatMap(
        Plan.planning(options.sourceId, listing, null, progress, {
          lookUpVersions: options.source.lookUpVersions ?? (() => Effect.void)
        }),
        Plan.collect
      )
    )
    const wouldImport = plan.changed.filter((c) => !c.recheck).map((c) => c.planned.key)
    const wouldRecheck = plan.changed.filter((c) => c.recheck).map((c) => c.planned.key)
    return {
      sourceId: options.sourceId,
      dryRun: true,
      target,
      opId: null,
      resumed: false,
      restarts: 0,
      seen: plan.seen + plan.problems.length,
      unchanged: plan.seen - plan.changed.length,
      read: 0,
      imported: wouldImport.length,
      deleted: plan.deletes.length,
      failed: plan.problems.length,
      recovered: 0,
      wouldImport,
      wouldRecheck,
      wouldDelete: [...plan.deletes]
    } satisfies SyncSummary
  })

/** How a sync ended, for `tidemark_syncs_total`. */
const outcomeOf = (exit: { readonly _tag: "Success" | "Failure" }, interrupted: boolean) =>
  exit._tag === "Success" ? "ok" : interrupted ? "interrupted" : "failed"

export const run = Effect.fn("tidemark.sync")(function* (options: SyncOptions) {
  yield* Effect.annotateCurrentSpan({
    "tidemark.source": options.sourceId,
    "tidemark.kind": options.source.kind,
    "tidemark.dry_run": options.dryRun === true
  })
  const progress = options.progress ?? (yield* Ref.make(initialProgress))
  if (options.dryRun) return yield* dryRun(options, progress)
  return yield* underLease(options.sourceId, options, progress, (lease) => runWithLease(options, progress, lease)).pipe(
    Effect.onExit((exit) =>
      Metric.increment(
        Metric.tagged(
          Metrics.ofSource(Metrics.syncs, options.sourceId),
          "outcome",
          outcomeOf(exit, exit._tag === "Failure" && Cause.isInterruptedOnly(exit.cause))
        )
      )
    )
  )
}, recordErrorTag)
