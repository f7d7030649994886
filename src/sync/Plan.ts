/**
 * The plan of a sync: what to read and write, what to delete, and which
 * recorded errors no longer apply — found without reading any content. A
 * listed item is skipped when the sink holds it at the listed version; an
 * item banked by the resumed op is skipped only where the sink shows it done
 * (or its error recorded), since a server crash can take back a committed
 * batch. Stored items the listing did not name are gone, except under
 * prefixes the listing could not see into.
 *
 * The stored versions come from one read of them all when the sink can do
 * that and the listing is complete (the one read also says what is gone),
 * else from a lookup per batch of listed items and a paging of stored keys.
 *
 * A first import (nothing stored, no recorded errors) has nothing to compare,
 * delete, guard or skip: past its first items (`firstImport`) they are handed
 * to the import as the listing finds them, so that a sync never holds every
 * item of a large tree at once. Any other plan is made in full first
 * (`collect`): the mass-change guard needs its size before anything is written.
 */
import { Chunk, Deferred, Effect, Fiber, Option, Ref, Stream } from "effect"
import { CheckpointStore } from "../checkpoint/CheckpointStore.js"
import { ItemErrorStore } from "../quarantine/ItemErrorStore.js"
import { type Differing, Sink } from "../sink/Sink.js"
import { isRecheckOf, racyHashOf } from "../source/racyVersion.js"
import { ItemProblem, type Listing, type PlannedItem, type Source } from "../source/Source.js"
import { eventLoopTurns } from "../util/eventLoopTurns.js"
import type { Progress } from "./Progress.js"

/** A planned item to read and write, and whether anything is stored for its key. */
export interface ChangedItem {
  readonly planned: PlannedItem
  readonly stored: boolean
  /**
   * A re-check: stored at this version marked as not trusted (see
   * `racyVersion`), not moved since. Read again, it is unchanged when its content
   * hash is `recheckHash` (null when the stored version does not say).
   */
  readonly recheck: boolean
  readonly recheckHash: string | null
}

/** What a plan knows once its listing has ended, besides the changed items themselves. */
export interface PlanRest {
  /** Whether the source listed everything (not only what changed). */
  readonly complete: boolean
  /** How many items were changed. */
  readonly changedCount: number
  /**
   * Of `changed`, the items that are new or whose version moved. The rest are
   * re-checks (a version stored as unreliable) and retries of failed items:
   * they do not count toward the mass-change guard.
   */
  readonly moved: number
  readonly problems: ReadonlyArray<ItemProblem>
  readonly deletes: ReadonlyArray<string>
  /**
   * Keys with recorded errors that no longer apply: gone from the source, or
   * stored at the listed version (their import committed, the clearing did not).
   */
  readonly resolvedErrors: ReadonlyArray<string>
  /** Keys of `changed` items that have a recorded error: cleared when they import. */
  readonly failedKeys: ReadonlySet<string>
  /** Items listed (problems not included). */
  readonly seen: number
  readonly existing: number
}

/** A plan made in full. */
export interface Plan extends PlanRest {
  /** Handed over to `Apply`, which empties it as it takes each batch (its length stays). */
  readonly changed: Array<ChangedItem>
}

/** A plan being made: its changed items as the listing finds them, the rest at the end. */
export interface Planning<E> {
  /**
   * Nothing is stored and no error recorded: nothing can be gone or skipped, and the
   * mass-change guard has nothing to protect, so the import may take `changes` as they come.
   */
  readonly firstImport: boolean
  /** The changed items, a batch at a time, counted into the progress as they pass. Run once. */
  readonly changes: Stream.Stream<ReadonlyArray<ChangedItem>, E>
  /** Of the changed items, those with a recorded error (filled as `changes` runs). */
  readonly failedKeys: ReadonlySet<string>
  /** The rest of the plan, once `changes` has run to its end. */
  readonly rest: Effect.Effect<PlanRest, E>
}

const planBatch = 1000
/**
 * The most stored items whose versions a plan reads all at once: held in memory, so a larger
 * source is looked up batch by batch instead (what the map costs at 1,000,000: BENCHMARKS.md
 * §Speed).
 */
const readAllUpTo = 250_000
/** Batches of the listing planned ahead of the one being compared. */
const readAhead = 32
const keysPage = 5000

/** The stored keys that are gone, and how many are stored, paging through them in key order. */
const storedGone = (sink: Sink["Type"], sourceId: string, gone: (key: string) => boolean) =>
  Effect.gen(function* () {
    const deletes: Array<string> = []
    let existing = 0
    let after = ""
    for (;;) {
      const page = yield* sink.keysAfter(sourceId, after, keysPage)
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
 * `resumedOp`: the op whose banked items to skip, if it has any; `source`:
 * its `prepareRead`, run once, when the plan first finds an item to read, and
 * its `lookUpVersions`, run on each batch before it is compared. The stored
 * versions, when read in full, are read in the caller's scope.
 */
export const planning = Effect.fnUntraced(function* (
  sourceId: string,
  listing: Listing,
  resumedOp: number | null,
  progress: Ref.Ref<Progress>,
  source: Pick<Source, "prepareRead" | "lookUpVersions">
) {
  const prepareRead = source.prepareRead ?? Effect.void
  const sink = yield* Sink
  const store = yield* CheckpointStore
  const errors = yield* ItemErrorStore
  let changedCount = 0
  const failedKeys = new Set<string>()
  const storedWithError: Array<string> = []
  let moved = 0
  const problems: Array<ItemProblem> = []
  const seen = new Set<string>()
  let listed = 0
  const recordedErrors = new Set(yield* errors.keys(sourceId))
  // With nothing stored every item is new: no lookups, and no planned version is
  // asked for (a folder's costs a file system call per file).
  const storedCount = yield* sink.count(sourceId)
  // Where the kept count says nothing is stored, one key is looked for too: with nothing
  // stored the listed keys are not kept (nothing can be gone), so a count gone wrong must
  // not pass for an empty source.
  const nothingStored = storedCount === 0 && (yield* sink.keysAfter(sourceId, "", 1)).length === 0
  // A complete listing of a source with stored items (not too many to hold), on a sink that
  // can read them all at once: read while the listing starts, compared in memory. Each listed
  // key is taken out, so what is left at the end is what the listing did not name.
  const readAll =
    listing._tag === "Complete" && !nothingStored && storedCount <= readAllUpTo ? sink.storedVersions : undefined
  const stored =
    readAll === undefined
      ? null
      : yield* Effect.forkScoped(Effect.map(readAll(sourceId), (versions) => ({ versions, existing: versions.size })))
  const keepListed = stored === null && !nothingStored
  const compare = (versions: Map<string, string | null>, items: ReadonlyArray<PlannedItem>) => {
    const differing: Array<Differing> = []
    for (const item of items) {
      const version = versions.get(item.key)
      if (version === undefined) differing.push({ item, stored: null })
      else {
        versions.delete(item.key)
        if (version !== item.version) differing.push({ item, stored: version })
      }
    }
    return differing
  }
  const differingOf = (items: ReadonlyArray<PlannedItem>) =>
    nothingStored
      ? Effect.succeed(items.map((item): Differing => ({ item, stored: null })))
      : Effect.zipRight(
          source.lookUpVersions?.(items) ?? Effect.void,
          stored !== null
            ? Effect.map(Fiber.join(stored), ({ versions }) => compare(versions, items))
            : // Only the items whose stored version differs come back: a no-change sync transfers nothing.
              sink.differing(sourceId, items)
        )
  // Such a listing may never wait on anything: the lease's heartbeat must still run.
  const breathe = yield* eventLoopTurns("50 millis")
  // Lookups of one chunk overlap the listing of the next.
  const changes = listing.items.pipe(
    Stream.mapChunksEffect((chunk) => Effect.as(breathe, chunk)),
    Stream.grouped(planBatch),
    // The listing goes on while the first batches wait for the stored versions.
    Stream.buffer({ capacity: readAhead }),
    Stream.mapEffect(
      (chunk) =>
        Effect.gen(function* () {
          const items: Array<PlannedItem> = []
          for (const entry of Chunk.toReadonlyArray(chunk)) {
            if (entry instanceof ItemProblem) problems.push(entry)
            else items.push(entry)
          }
          // Where the stored versions are read in full, or nothing is stored, the listed keys
          // are not needed to find what is gone: only those with errors are kept.
          for (const item of items) {
            if (keepListed || recordedErrors.has(item.key)) seen.add(item.key)
          }
          listed += items.length
          const differing = yield* differingOf(items)
          if (recordedErrors.size > 0) {
            const differingKeys = new Set(differing.map((row) => row.item.key))
            for (const item of items) {
              if (recordedErrors.has(item.key) && !differingKeys.has(item.key)) storedWithError.push(item.key)
            }
          }
          // Banked is not enough to skip an item: the sink must show it done. Sink batches
          // may commit without waiting for their WAL flush, and a server crash can take back
          // one whose items a checkpoint flush then banked on the restarted server. Of the
          // items that come back here, only those with a recorded error can be done.
          const failed = differing.filter((row) => recordedErrors.has(row.item.key)).map((row) => row.item.key)
          const banked =
            resumedOp === null || failed.length === 0
              ? new Map<string, string>()
              : yield* store.bankedAmong(resumedOp, failed)
          return banked.size === 0
            ? differing
            : differing.filter(
                (row) => !(recordedErrors.has(row.item.key) && banked.get(row.item.key) === row.item.version)
              )
        }),
      { concurrency: 2 }
    ),
    Stream.mapEffect((differing) => {
      const firstToRead = changedCount === 0 && differing.length > 0
      const batch = differing.map((row): ChangedItem => {
        const failed = recordedErrors.has(row.item.key)
        const recheck = !failed && row.stored !== null && isRecheckOf(row.stored, row.item.version)
        if (failed) failedKeys.add(row.item.key)
        else if (!recheck) moved++
        return {
          planned: row.item,
          stored: row.stored !== null,
          recheck,
          recheckHash: recheck ? racyHashOf(row.stored!) : null
        }
      })
      changedCount += batch.length
      const counted = Ref.update(progress, (p) => ({
        ...p,
        seen: listed + problems.length,
        toImport: changedCount + problems.length
      }))
      return Effect.as(firstToRead ? Effect.zipRight(prepareRead, counted) : counted, batch)
    }),
    Stream.filter((batch) => batch.length > 0)
  )
  const rest = Effect.gen(function* () {
    // Complete: gone is stored, not listed, and not under a folder the listing could not read.
    const unlisted = listing._tag === "Complete" ? yield* listing.unlisted : []
    const goneKeys = listing._tag === "Delta" ? new Set(listing.gone) : null
    const gone = (key: string) =>
      goneKeys?.has(key) ?? (!seen.has(key) && !unlisted.some((prefix) => key.startsWith(prefix)))
    const { deletes, existing } =
      stored !== null
        ? yield* Effect.map(Fiber.join(stored), ({ existing, versions }) => ({
            existing,
            deletes: [...versions.keys()].filter(gone)
          }))
        : listing._tag === "Complete"
          ? nothingStored
            ? { deletes: [], existing: 0 }
            : yield* storedGone(sink, sourceId, gone)
          : { deletes: listing.gone, existing: yield* sink.count(sourceId) }
    const problemKeys = new Set(problems.map((p) => p.key))
    const resolvedErrors = [
      ...[...recordedErrors].filter((key) => gone(key) && !problemKeys.has(key)),
      ...storedWithError.filter((key) => !problemKeys.has(key))
    ]
    yield* Effect.annotateCurrentSpan({
      "tidemark.seen": listed,
      "tidemark.changed": changedCount,
      "tidemark.deletes": deletes.length,
      "tidemark.problems": problems.length
    })
    return {
      complete: listing._tag === "Complete",
      changedCount,
      moved,
      problems,
      deletes,
      resolvedErrors,
      failedKeys,
      seen: listed,
      existing
    } satisfies PlanRest
  })
  return { firstImport: nothingStored && recordedErrors.size === 0, changes, failedKeys, rest }
})

/**
 * The whole plan, made before anything is written: what the mass-change guard and a
 * dry run look at. Runs `planning`'s changes to their end.
 */
export const collect = Effect.fn("tidemark.plan")(function* <E>(planning: Planning<E>) {
  const changed: Array<ChangedItem> = []
  yield* Stream.runForEach(planning.changes, (batch) =>
    Effect.sync(() => {
      for (const item of batch) changed.push(item)
    })
  )
  return { ...(yield* planning.rest), changed } satisfies Plan
})

/** A first import's plan: made in full, or begun (its first items) and still listing. */
export type FirstImport<E> =
  | { readonly _tag: "Whole"; readonly plan: Plan }
  | { readonly _tag: "Listing"; readonly changes: Stream.Stream<ReadonlyArray<ChangedItem>, E> }

/**
 * The plan of a first import, made in full when its listing ends within `upTo` changed
 * items (the import then has a total, an ETA and the op its planned count from the start);
 * else the import takes the items found so far and then the rest as the listing finds them,
 * never holding more than about `upTo` of them. Pulls in the caller's scope.
 */
export const firstImport = Effect.fn("tidemark.plan")(function* <E>(planning: Planning<E>, upTo: number) {
  const pull = yield* Stream.toPull(planning.changes)
  // A batch, or none once the listing has ended.
  const next = pull.pipe(
    Effect.map(Option.some),
    Effect.catchAll(Option.match({ onNone: () => Effect.succeed(Option.none()), onSome: Effect.fail }))
  )
  // Kept as the batches they came in: the import takes them as it would from the listing.
  const head: Array<ReadonlyArray<ChangedItem>> = []
  let found = 0
  while (found < upTo) {
    const batches = yield* next
    if (Option.isNone(batches)) {
      return { _tag: "Whole", plan: { ...(yield* planning.rest), changed: head.flat() } } satisfies FirstImport<E>
    }
    for (const batch of batches.value) {
      head.push(batch)
      found += batch.length
    }
  }
  yield* Effect.annotateCurrentSpan({ "tidemark.streamed": true, "tidemark.changed": found })
  const changes = Stream.concat(Stream.fromIterable(head), Stream.repeatEffectChunkOption(pull))
  return { _tag: "Listing", changes } satisfies FirstImport<E>
})

/**
 * The changes of a first import still listing, as the import takes them, in a span of
 * their own (under the import's): its end says what the rest of the plan is.
 */
export const streamed = <E>(changes: Stream.Stream<ReadonlyArray<ChangedItem>, E>, planning: Planning<E>) =>
  Effect.map(Deferred.make<PlanRest>(), (ended) => ({
    changes: Stream.concat(
      changes,
      Stream.execute(Effect.flatMap(planning.rest, (rest) => Deferred.succeed(ended, rest)))
    ).pipe(Stream.withSpan("tidemark.plan.listing")),
    rest: Deferred.await(ended)
  }))
