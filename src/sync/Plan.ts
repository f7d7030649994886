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
 */
import { Chunk, Effect, Fiber, Ref, Stream } from "effect"
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

export interface Plan {
  /** Whether the source listed everything (not only what changed). */
  readonly complete: boolean
  /** Handed over to `Apply`, which empties it as it takes each batch (its length stays). */
  readonly changed: Array<ChangedItem>
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
const storedGone = (sourceId: string, gone: (key: string) => boolean) =>
  Effect.gen(function* () {
    const sink = yield* Sink
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
 * its `lookUpVersions`, run on each batch before it is compared.
 */
export const make = Effect.fn("tidemark.plan")(function* (
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
  const changed: Array<ChangedItem> = []
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
  yield* listing.items.pipe(
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
    Stream.runForEach((differing) => {
      const firstToRead = changed.length === 0 && differing.length > 0
      for (const row of differing) {
        const failed = recordedErrors.has(row.item.key)
        const recheck = !failed && row.stored !== null && isRecheckOf(row.stored, row.item.version)
        changed.push({
          planned: row.item,
          stored: row.stored !== null,
          recheck,
          recheckHash: recheck ? racyHashOf(row.stored!) : null
        })
        if (failed) failedKeys.add(row.item.key)
        else if (!recheck) moved++
      }
      const counted = Ref.update(progress, (p) => ({
        ...p,
        seen: listed + problems.length,
        toImport: changed.length + problems.length
      }))
      return firstToRead ? Effect.zipRight(prepareRead, counted) : counted
    })
  )
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
          : yield* storedGone(sourceId, gone)
        : { deletes: listing.gone, existing: yield* sink.count(sourceId) }
  const problemKeys = new Set(problems.map((p) => p.key))
  const resolvedErrors = [
    ...[...recordedErrors].filter((key) => gone(key) && !problemKeys.has(key)),
    ...storedWithError.filter((key) => !problemKeys.has(key))
  ]
  yield* Effect.annotateCurrentSpan({
    "tidemark.seen": listed,
    "tidemark.changed": changed.length,
    "tidemark.deletes": deletes.length,
    "tidemark.problems": problems.length
  })
  return {
    complete: listing._tag === "Complete",
    changed,
    moved,
    problems,
    deletes,
    resolvedErrors,
    failedKeys,
    seen: listed,
    existing
  } satisfies Plan
}, Effect.scoped)
