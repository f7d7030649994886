/**
 * Carrying out a plan: the changed items read a batch at a time (ahead of the
 * writes) and written, then the listing's problems recorded, then the
 * deletions. The changed items may still be coming from the listing (a first
 * import), so what else the plan found is only asked for once they are done.
 * Each batch is written in one fenced transaction by the sink, its
 * item errors recorded (fenced too), and then banked: the three are one
 * uninterruptible step, so an interruption can never leave a written batch
 * unbanked.
 */
import { Chunk, Effect, Metric, Ref, Stream } from "effect"
import type * as Checkpoint from "../checkpoint/Checkpoint.js"
import type { Lease } from "../lock/LeaseLock.js"
import { type ErrorChange, isEmptyChange, ItemErrorStore } from "../quarantine/ItemErrorStore.js"
import { type Batch, type ItemErrorRow, Sink } from "../sink/Sink.js"
import { ItemProblem, type ReadItem, type Source } from "../source/Source.js"
import { inBatches } from "../util/batches.js"
import type { ChangedItem, Plan, PlanRest } from "./Plan.js"
import { addToSample, type KeySample, type Progress } from "./Progress.js"
import * as Metrics from "../telemetry/Metrics.js"

const writeBatchSize = 500

/** What a slot of the plan's list holds once its item was taken. */
const taken: ChangedItem = { planned: { key: "", version: "" }, stored: false, recheck: false, recheckHash: null }

/**
 * The plan's changed items in batches, one at a time, each let go in the list
 * as it is taken: the import then holds only the batches in flight, not the
 * whole list (most of a first import's memory: BENCHMARKS.md §Speed).
 */
function* taking(items: Array<ChangedItem>, size: number): Generator<ReadonlyArray<ChangedItem>> {
  for (let at = 0; at < items.length; at += size) {
    const batch = items.slice(at, at + size)
    items.fill(taken, at, at + size)
    yield batch
  }
}
/**
 * Batches written at once, each in its own transaction on its own connection
 * (their keys are disjoint). Two keep PostgreSQL busy while the next batch is
 * serialised (figures in BENCHMARKS.md).
 */
const concurrentWrites = 2
const deleteBatch = 1000

/** What to import: the changed items in batches of any size, and the rest of the plan once they are done. */
export interface Work<E, ERest = E> {
  readonly changes: Stream.Stream<ReadonlyArray<ChangedItem>, E>
  /** Of the changed items, those with a recorded error: cleared when they import. */
  readonly failedKeys: ReadonlySet<string>
  readonly rest: Effect.Effect<PlanRest, ERest>
}

/** A plan made in full, as work: its list let go a batch at a time as the import takes it. */
export const ofPlan = (plan: Plan): Work<never> => ({
  // One batch per pull: `fromIterable` would take thousands at once, and hold them.
  changes: Stream.fromIteratorSucceed(taking(plan.changed, writeBatchSize), 1),
  failedKeys: plan.failedKeys,
  rest: Effect.succeed(plan)
})

export interface Applying {
  readonly sourceId: string
  readonly source: Source
  readonly concurrency: number
  readonly progress: Ref.Ref<Progress>
  readonly lease: Lease
  readonly checkpoint: Checkpoint.Checkpoint
  /** The first names of what is imported and deleted. */
  readonly sample: Ref.Ref<KeySample>
}

interface SortedBatch {
  readonly items: ReadonlyArray<ReadItem>
  readonly unstored: ReadonlySet<string>
  /** Keys of `items` that were re-checks and read the same as before: written (their version is trusted now), not imported. */
  readonly sameAsStored: ReadonlySet<string>
  readonly errors: ReadonlyArray<ItemErrorRow>
  readonly banked: ReadonlyArray<{ readonly key: string; readonly version: string }>
}

/** Splits a batch of read results into items to write and items that could not be read, with what to bank for each. */
const sortBatch = (
  planned: ReadonlyArray<ChangedItem>,
  results: ReadonlyArray<ReadItem | ItemProblem>
): SortedBatch => {
  const items: Array<ReadItem> = []
  const unstored = new Set<string>()
  const sameAsStored = new Set<string>()
  const errors: Array<ItemErrorRow> = []
  const banked: Array<{ key: string; version: string }> = []
  planned.forEach(({ planned: item, stored, recheck, recheckHash }, i) => {
    const read = results[i]!
    if (read instanceof ItemProblem) {
      errors.push({ key: item.key, version: item.version, error: read.reason })
      banked.push({ key: item.key, version: item.version })
    } else {
      items.push(read)
      if (!stored) unstored.add(item.key)
      if (recheck && recheckHash === read.contentHash) sameAsStored.add(item.key)
      banked.push({ key: item.key, version: read.version })
    }
  })
  return { items, unstored, sameAsStored, errors, banked }
}

export const apply = Effect.fn("tidemark.import")(function* <E, ERest>(work: Work<E, ERest>, ctx: Applying) {
  const { sourceId, source, progress, lease, checkpoint, sample } = ctx
  const sink = yield* Sink
  const errorStore = yield* ItemErrorStore
  const recordErrors = (change: ErrorChange) =>
    isEmptyChange(change) ? Effect.void : errorStore.record(sourceId, change, lease.fence)

  /**
   * Writes a batch, records its errors, banks it and counts it: one step, so that what
   * is written is always banked and counted (an interruption between them, by a sibling
   * batch's failure, would leave the counts behind the database).
   */
  const writeAndBank = (
    batch: Batch,
    sameAsStored: ReadonlySet<string>,
    readErrors: ReadonlyArray<ItemErrorRow>,
    resolved: ReadonlyArray<string>,
    rows: ReadonlyArray<{ readonly key: string; readonly version: string }>
  ) =>
    Effect.uninterruptible(
      Effect.gen(function* () {
        const rejected = yield* sink.write(sourceId, batch, lease.fence)
        const rejectedKeys = new Set(rejected.map((row) => row.key))
        yield* recordErrors({
          resolved: resolved.filter((key) => !rejectedKeys.has(key)),
          errors: [...readErrors, ...rejected]
        })
        yield* checkpoint.bank(rows)
        const imported = batch.items
          .filter((item) => !rejectedKeys.has(item.key) && !sameAsStored.has(item.key))
          .map((item) => item.key)
        yield* Ref.update(sample, (s) => addToSample(s, imported, batch.deletes))
        const bytes = batch.items.reduce((sum, item) => sum + item.size, 0)
        const failed = readErrors.length + rejected.length
        yield* Metric.incrementBy(Metrics.ofSource(Metrics.itemsSynced, sourceId), imported.length)
        yield* Metric.incrementBy(Metrics.ofSource(Metrics.itemsDeleted, sourceId), batch.deletes.length)
        yield* Metric.incrementBy(Metrics.ofSource(Metrics.bytesSynced, sourceId), bytes)
        yield* Metric.incrementBy(Metrics.ofSource(Metrics.itemsFailed, sourceId), failed)
        yield* Effect.annotateCurrentSpan({ "tidemark.imported": imported.length, "tidemark.failed": failed })
        yield* Ref.update(progress, (p) => ({
          ...p,
          banked: p.banked + rows.length,
          read: p.read + batch.items.length,
          imported: p.imported + imported.length,
          rechecked: p.rechecked + batch.items.length - rejected.length - imported.length,
          failed: p.failed + failed,
          deleted: p.deleted + batch.deletes.length,
          bytes: p.bytes + bytes
        }))
      })
    ).pipe(
      Metrics.timedIn(Metrics.batchWrite),
      Effect.withSpan("tidemark.batch.write", {
        attributes: { "tidemark.items": batch.items.length, "tidemark.deletes": batch.deletes.length }
      })
    )

  // Batches are read ahead (up to `concurrency` at once) while earlier ones are written.
  yield* work.changes.pipe(
    Stream.flattenIterables,
    Stream.grouped(writeBatchSize),
    Stream.mapEffect(
      (chunk) => {
        const planned = Chunk.toReadonlyArray(chunk)
        return Effect.map(source.read(planned.map((changed) => changed.planned)), (results) =>
          sortBatch(planned, results)
        ).pipe(
          Metrics.timedIn(Metrics.batchRead),
          Effect.withSpan("tidemark.batch.read", { attributes: { "tidemark.items": planned.length } })
        )
      },
      { concurrency: ctx.concurrency }
    ),
    Stream.mapEffect(
      ({ items, unstored, sameAsStored, errors, banked }) =>
        writeAndBank(
          { items, unstored, deletes: [] },
          sameAsStored,
          errors,
          items.filter((item) => work.failedKeys.has(item.key)).map((item) => item.key),
          banked
        ),
      { concurrency: concurrentWrites }
    ),
    Stream.runDrain
  )

  const plan = yield* work.rest
  const planErrors = plan.problems.map((p) => ({ key: p.key, version: null, error: p.reason }))
  yield* recordErrors({ resolved: plan.resolvedErrors, errors: planErrors })
  // Counted once per process, however often a retry lists them again.
  yield* Ref.update(progress, (p) => ({
    ...p,
    failed: p.failed - p.listingFailed + planErrors.length,
    listingFailed: planErrors.length
  }))

  yield* Ref.update(progress, (p): Progress => ({ ...p, phase: "deleting" }))
  for (const keys of inBatches(plan.deletes, deleteBatch)) {
    yield* writeAndBank(
      { items: [], deletes: keys },
      new Set(),
      [],
      [],
      keys.map((key) => ({ key, version: "deleted" }))
    )
  }
})
