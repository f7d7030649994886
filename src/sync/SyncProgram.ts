/**
 * One sync of a source, resumable at every point:
 *
 *   lease → open or resume the op → plan (skip what is unchanged or already
 *   banked, without reading it) → mass-change guard → import with bounded
 *   concurrency, batch-written under the lease's fence, banked after commit →
 *   deletions → finish (watermark, close the op, clear its items).
 *
 * Transient failures (connection lost, pool exhausted, server restarting)
 * restart the whole program in the same process; it resumes from what was
 * written and banked. Per-item problems go to `item_errors` and never stop the
 * sync; since those items have no current document, every later sync tries
 * them again.
 */
import { Chunk, Data, type Duration, Effect, Fiber, Ref, Stream } from "effect"
import * as Checkpoint from "../checkpoint/Checkpoint.js"
import { CheckpointStore } from "../checkpoint/CheckpointStore.js"
import { isTransient, transientRetrySchedule } from "../db/Transient.js"
import { type Lease, LeaseLock } from "../lock/LeaseLock.js"
import type { LeaseTimings } from "../lock/LeaseTimings.js"
import { type Batch, type Differing, type ItemErrorRow, Sink } from "../sink/Sink.js"
import {
  ItemProblem,
  type Listing,
  type PlannedItem,
  type ReadItem,
  type Source,
  type Target
} from "../source/Source.js"
import { inBatches } from "../util/batches.js"
import { eventLoopTurns } from "../util/eventLoopTurns.js"
import { interruptOn } from "../util/interruptOn.js"
import type { RunStatePolicy } from "../state/RunState.js"
import * as Ops from "./Ops.js"
import type { Progress } from "./Progress.js"
import * as RunStateTracking from "./RunStateTracking.js"

export class MassChangeRefused extends Data.TaggedError("MassChangeRefused")<{
  readonly sourceId: string
  readonly existing: number
  readonly imports: number
  readonly deletes: number
  readonly limit: number
}> {
  override get message() {
    return this.imports <= this.limit && this.deletes <= this.limit
      ? `refusing to delete all ${this.deletes} documents of ${this.sourceId}: the source lists nothing`
      : `refusing to ${this.deletes > this.limit ? `delete ${this.deletes}` : `import ${this.imports}`} of ${this.existing} documents of ${this.sourceId} in one sync (limit ${this.limit})`
  }
  get hint() {
    return "if the folder really changed that much, rerun with --allow-mass-change; an unmounted or emptied folder looks like this too"
  }
}

export interface SyncOptions {
  readonly sourceId: string
  readonly source: Source
  readonly concurrency: number
  readonly dryRun: boolean
  readonly allowMassChange: boolean
  readonly wait?: Duration.DurationInput
  readonly progress: Ref.Ref<Progress>
  readonly flushPolicy?: Checkpoint.FlushPolicy
  readonly runStatePolicy?: RunStatePolicy
  /** How long a holder that stopped renewing keeps the source's lease (default ttl 30 s). */
  readonly leaseTimings?: LeaseTimings
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
}

const sameTarget = (a: Target, b: Target) => JSON.stringify(a) === JSON.stringify(b)

const planBatch = 1000
const writeBatchSize = 500
/**
 * Batches written at once, each in its own transaction on its own connection
 * (their keys are disjoint). Two keep PostgreSQL busy while the next batch is
 * serialised: a 100,000-file first import went from ~14.8 s to ~11.3 s.
 */
const concurrentWrites = 2
const deleteBatch = 1000

/** How many imports or deletions a sync may make without --allow-mass-change. */
const massChangeLimit = (existing: number) => Math.max(Math.floor(existing * 0.2), 50)

/**
 * Too big a change to make without being asked: more than the limit, or a
 * source that lists nothing at all while documents exist (an unmounted
 * folder), however few they are. Deletions are checked on every run, resumed
 * or not.
 */
const isMassChange = (
  plan: {
    readonly complete: boolean
    readonly existing: number
    readonly seen: number
    readonly moved: number
    readonly deletes: ReadonlyArray<string>
  },
  resumed: boolean
) => {
  if (plan.existing === 0) return false
  const limit = massChangeLimit(plan.existing)
  // A resumed op passed the import check when it began: its imports are the rest of that work.
  const importsTooMany = !resumed && plan.moved > limit
  const listsNothing = plan.complete && plan.seen === 0 && plan.deletes.length > 0
  return plan.deletes.length > limit || importsTooMany || listsNothing
}

/** A planned item to read and write, and whether anything is stored for its key. */
interface ChangedItem {
  readonly planned: PlannedItem
  readonly stored: boolean
}

interface Plan {
  /** Whether the source listed everything (not only what changed). */
  readonly complete: boolean
  readonly changed: ReadonlyArray<ChangedItem>
  /**
   * Of `changed`, the items that are new or whose version moved. The rest are
   * re-checks (a version stored as unreliable) and retries of failed items:
   * they do not count toward the mass-change guard.
   */
  readonly moved: number
  readonly problems: ReadonlyArray<ItemProblem>
  readonly deletes: ReadonlyArray<string>
  /** Keys with recorded errors that are gone from the source. */
  readonly resolvedErrors: ReadonlyArray<string>
  /** Keys of `changed` items that have a recorded error: cleared when they import. */
  readonly failedKeys: ReadonlySet<string>
  readonly seen: number
  readonly existing: number
}

/** The stored keys that are gone, and how many are stored, paging through them in key order. */
const storedGone = (sourceId: string, gone: (key: string) => boolean) =>
  Effect.gen(function* () {
    const sink = yield* Sink
    const deletes: Array<string> = []
    let existing = 0
    let after = ""
    for (;;) {
      const page = yield* sink.keysAfter(sourceId, after, 5000)
      if (page.length === 0) break
      existing += page.length
      for (const key of page) {
        if (gone(key)) deletes.push(key)
      }
      after = page[page.length - 1]!
    }
    return { deletes, existing }
  })

/**
 * `resumedOp`: the op whose banked items to skip, if it has any;
 * `prepareRead`: run once, when the plan first finds an item to read.
 */
const makePlan = (
  sourceId: string,
  listing: Listing,
  resumedOp: number | null,
  progress: Ref.Ref<Progress>,
  prepareRead: Effect.Effect<void>
) =>
  Effect.gen(function* () {
    const sink = yield* Sink
    const store = yield* CheckpointStore
    const changed: Array<ChangedItem> = []
    const failedKeys = new Set<string>()
    let moved = 0
    const problems: Array<ItemProblem> = []
    const seen = new Set<string>()
    // With nothing stored every item is new: no lookups, and no planned version is
    // asked for (a folder's costs a file system call per file).
    const nothingStored = (yield* sink.count(sourceId)) === 0
    const recordedErrors = nothingStored ? new Set(yield* Ops.recordedErrorKeys(sourceId)) : null
    const differingOf = (items: ReadonlyArray<PlannedItem>) =>
      recordedErrors === null
        ? // Only the items whose stored version differs come back: a no-change sync transfers nothing.
          sink.differing(sourceId, items)
        : Effect.succeed(items.map((item): Differing => ({ item, stored: null, failed: recordedErrors.has(item.key) })))
    // Such a listing may never wait on anything: the lease's heartbeat must still run.
    const breathe = yield* eventLoopTurns("50 millis")
    // Lookups of one chunk overlap the listing of the next.
    yield* listing.items.pipe(
      Stream.mapChunksEffect((chunk) => Effect.as(breathe, chunk)),
      Stream.grouped(planBatch),
      Stream.mapEffect(
        (chunk) =>
          Effect.gen(function* () {
            const items: Array<PlannedItem> = []
            for (const entry of Chunk.toReadonlyArray(chunk)) {
              if (entry instanceof ItemProblem) problems.push(entry)
              else items.push(entry)
            }
            for (const item of items) seen.add(item.key)
            const differing = yield* differingOf(items)
            // Banked is not enough to skip an item: the sink must show it done. Sink batches
            // commit without waiting for their WAL flush, and a server crash can take back
            // one whose items a checkpoint flush then banked on the restarted server. Of the
            // items that come back here, only those with a recorded error can be done.
            const failed = differing.filter((row) => row.failed).map((row) => row.item.key)
            const banked =
              resumedOp === null || failed.length === 0
                ? new Map<string, string>()
                : yield* store.bankedAmong(resumedOp, failed)
            return banked.size === 0
              ? differing
              : differing.filter((row) => !(row.failed && banked.get(row.item.key) === row.item.version))
          }),
        { concurrency: 2 }
      ),
      Stream.runForEach((differing) => {
        const firstToRead = changed.length === 0 && differing.length > 0
        for (const row of differing) {
          changed.push({ planned: row.item, stored: row.stored !== null })
          if (row.failed) failedKeys.add(row.item.key)
          else if (row.stored === null || row.stored !== `${row.item.version}:racy`) moved++
        }
        const counted = Ref.update(progress, (p) => ({ ...p, seen: seen.size, toImport: changed.length }))
        return firstToRead ? Effect.zipRight(prepareRead, counted) : counted
      })
    )
    // Complete: gone is stored, not listed, and not under a folder the listing could not read.
    const unlisted = listing._tag === "Complete" ? yield* listing.unlisted : []
    const goneKeys = listing._tag === "Delta" ? new Set(listing.gone) : null
    const gone = (key: string) =>
      goneKeys?.has(key) ?? (!seen.has(key) && !unlisted.some((prefix) => key.startsWith(prefix)))
    const { deletes, existing } =
      listing._tag === "Complete"
        ? yield* storedGone(sourceId, gone)
        : { deletes: listing.gone, existing: yield* sink.count(sourceId) }
    const problemKeys = new Set(problems.map((p) => p.key))
    const resolvedErrors = (yield* Ops.recordedErrorKeys(sourceId)).filter((key) => gone(key) && !problemKeys.has(key))
    return {
      complete: listing._tag === "Complete",
      changed,
      moved,
      problems,
      deletes,
      resolvedErrors,
      failedKeys,
      seen: seen.size,
      existing
    } satisfies Plan
  })

interface Applying {
  readonly sourceId: string
  readonly source: Source
  readonly concurrency: number
  readonly progress: Ref.Ref<Progress>
  readonly lease: Lease
  readonly checkpoint: Checkpoint.Checkpoint
}

/** Splits a batch of read results into items to write and items that could not be read, with what to bank for each. */
const sortBatch = (planned: ReadonlyArray<ChangedItem>, results: ReadonlyArray<ReadItem | ItemProblem>) => {
  const items: Array<ReadItem> = []
  const unstored = new Set<string>()
  const errors: Array<ItemErrorRow> = []
  const banked: Array<{ key: string; version: string }> = []
  planned.forEach(({ planned: item, stored }, i) => {
    const read = results[i]!
    if (read instanceof ItemProblem) {
      errors.push({ key: item.key, version: item.version, error: read.reason })
      banked.push({ key: item.key, version: item.version })
    } else {
      items.push(read)
      if (!stored) unstored.add(item.key)
      banked.push({ key: item.key, version: read.version })
    }
  })
  return { items, unstored, errors, banked }
}

/** Records the plan's problems, imports what changed, deletes what is gone: every batch fenced, then banked. */
const applyPlan = (plan: Plan, ctx: Applying) =>
  Effect.gen(function* () {
    const { sourceId, source, progress, lease, checkpoint } = ctx
    const sink = yield* Sink
    // A batch is banked in the same uninterruptible step as its commit: an
    // interruption between the two would leave written items unbanked.
    const writeAndBank = (batch: Batch, rows: ReadonlyArray<{ readonly key: string; readonly version: string }>) =>
      Effect.uninterruptible(
        Effect.zipLeft(
          sink.write(sourceId, batch, lease.fence),
          Effect.zipRight(
            checkpoint.bank(rows),
            Ref.update(progress, (p) => ({ ...p, banked: p.banked + rows.length }))
          )
        )
      )

    const planErrors = plan.problems.map((p) => ({ key: p.key, version: null, error: p.reason }))
    if (planErrors.length > 0 || plan.resolvedErrors.length > 0) {
      yield* sink.write(
        sourceId,
        { items: [], deletes: [], errors: planErrors, resolved: plan.resolvedErrors },
        lease.fence
      )
      yield* Ref.update(progress, (p) => ({ ...p, failed: p.failed + planErrors.length }))
    }

    // Batches are read ahead (up to `concurrency` at once) while earlier ones are written.
    yield* Stream.fromIterable(inBatches(plan.changed, writeBatchSize)).pipe(
      Stream.mapEffect(
        (planned) =>
          Effect.map(source.read(planned.map((changed) => changed.planned)), (results) => sortBatch(planned, results)),
        { concurrency: ctx.concurrency }
      ),
      Stream.mapEffect(
        ({ items, unstored, errors, banked }) =>
          Effect.gen(function* () {
            const resolved = items.filter((item) => plan.failedKeys.has(item.key)).map((item) => item.key)
            const rejected = yield* writeAndBank({ items, unstored, deletes: [], errors, resolved }, banked)
            yield* Ref.update(progress, (p) => ({
              ...p,
              read: p.read + items.length,
              imported: p.imported + items.length - rejected.length,
              failed: p.failed + errors.length + rejected.length,
              bytes: p.bytes + items.reduce((sum, item) => sum + item.size, 0)
            }))
          }),
        { concurrency: concurrentWrites }
      ),
      Stream.runDrain
    )

    yield* Ref.update(progress, (p): Progress => ({ ...p, phase: "deleting" }))
    for (const keys of inBatches(plan.deletes, deleteBatch)) {
      yield* writeAndBank(
        { items: [], deletes: keys, errors: [] },
        keys.map((key) => ({ key, version: "deleted" }))
      )
      yield* Ref.update(progress, (p) => ({ ...p, deleted: p.deleted + keys.length }))
    }
  })

const syncUnderLease = (options: SyncOptions) =>
  Effect.gen(function* () {
    const lock = yield* LeaseLock
    const sink = yield* Sink
    const { sourceId, source, progress } = options
    return yield* lock.withLease(
      `sync:${sourceId}`,
      (lease) =>
        Effect.scoped(
          Effect.gen(function* () {
            yield* Ops.ensureSource(sourceId, source.kind, source.root)
            const op = yield* Ops.openOrResume(sourceId, lease.token, lease.fence)
            yield* Ref.update(progress, (p): Progress => ({ ...p, phase: "planning", restarts: op.restarts }))
            const checkpoint = yield* Checkpoint.make(op.id, op.banked, options.flushPolicy)
            const target = yield* source.target(op.target)
            const moved = op.target !== null && !sameTarget(op.target, target)
            if (op.target === null || moved) yield* Ops.recordTarget(op.id, target, lease.fence)
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
            const plan = yield* makePlan(
              sourceId,
              listing,
              op.banked > 0 ? op.id : null,
              progress,
              source.prepareRead ?? Effect.void
            )
            const limit = massChangeLimit(plan.existing)
            if (!options.allowMassChange && isMassChange(plan, op.resumed)) {
              return yield* new MassChangeRefused({
                sourceId,
                existing: plan.existing,
                imports: plan.moved,
                deletes: plan.deletes.length,
                limit
              })
            }
            yield* Ref.update(progress, (p): Progress => ({
              ...p,
              phase: "importing",
              toImport: plan.changed.length + plan.problems.length
            }))
            const planned = op.banked + plan.changed.length + plan.deletes.length
            yield* Ops.recordPlanned(op.id, planned)
            yield* Ref.update(progress, (p) => ({ ...p, planned }))

            yield* interruptOn(
              applyPlan(plan, { sourceId, source, concurrency: options.concurrency, progress, lease, checkpoint }),
              checkpoint.failed
            )
            const applied = yield* Ref.updateAndGet(progress, (p): Progress => ({ ...p, phase: "finishing" }))
            // The sink's own upkeep needs no lease: it runs while the op is closed.
            const upkeep = yield* Effect.fork(sink.afterSync(applied.imported + applied.deleted))
            // Nothing may be banked into the op once it is closed: the pending items go
            // first (a flush already running is waited for), and whatever a failed flush
            // left is dropped with the op's other items.
            yield* checkpoint.flush
            yield* Ops.finish(sourceId, op.id, { ...source.watermark(target), syncedOp: op.id }, lease.fence)
            yield* checkpoint.discard
            yield* tracking.complete
            yield* Fiber.join(upkeep)
            const final = yield* Ref.get(progress)
            return {
              sourceId,
              dryRun: false,
              target,
              opId: op.id,
              resumed: op.resumed,
              restarts: op.restarts,
              seen: plan.seen,
              unchanged: plan.seen - plan.changed.length,
              read: final.read,
              imported: final.imported,
              deleted: final.deleted,
              failed: final.failed,
              recovered: final.retries
            } satisfies SyncSummary
          })
        ),
      {
        ...(options.wait === undefined ? {} : { wait: options.wait }),
        ...(options.leaseTimings === undefined ? {} : { timings: options.leaseTimings })
      }
    )
  })

/** The plan's counts, with nothing written and no lease taken. */
const dryRun = (options: SyncOptions) =>
  Effect.gen(function* () {
    const target = yield* options.source.target(null)
    const listing = yield* options.source.plan(target, yield* Ops.watermarkOf(options.sourceId))
    return [target, yield* makePlan(options.sourceId, listing, null, options.progress, Effect.void)] as const
  }).pipe(
    Effect.map(
      ([target, plan]) =>
        ({
          sourceId: options.sourceId,
          dryRun: true,
          target,
          opId: null,
          resumed: false,
          restarts: 0,
          seen: plan.seen,
          unchanged: plan.seen - plan.changed.length,
          read: 0,
          imported: plan.changed.length,
          deleted: plan.deletes.length,
          failed: plan.problems.length,
          recovered: 0
        }) satisfies SyncSummary
    )
  )

export const run = Effect.fn("SyncProgram.run")(function* (options: SyncOptions) {
  if (options.dryRun) return yield* dryRun(options)
  return yield* syncUnderLease(options).pipe(
    Effect.tapError((error) =>
      isTransient(error)
        ? Effect.zipRight(
            Ref.update(options.progress, (p) => ({ ...p, retries: p.retries + 1 })),
            Effect.logWarning(
              `sync interrupted by a transient failure, resuming: ${String((error as Error).message ?? error)}`
            )
          )
        : Effect.void
    ),
    Effect.retry(transientRetrySchedule())
  )
})
