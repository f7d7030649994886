/**
 * The checkpoint of one op: items are banked in memory as their writes commit,
 * and flushed to the store by a scoped fiber — at the first banked item, then
 * every `flushEvery` or as soon as `flushAt` items wait, whichever comes
 * first — and once more by the scope's finalizer (success, failure, timeout,
 * interruption), bounded in time. A flush swaps the pending delta out, writes
 * it with retry, and merges it back if it fails, so concurrent banking loses
 * nothing. After `maxFailures` consecutive failed flushes the checkpoint is
 * unavailable: `failed` fails, and the sync stops importing (fail loud).
 */
import { Data, Deferred, Duration, Effect, Queue, Ref } from "effect"
import type { RetryPolicy } from "../db/Transient.js"
import { retryTransient } from "../db/Transient.js"
import { type BankedItem, CheckpointStore } from "./CheckpointStore.js"
import * as Metrics from "../telemetry/Metrics.js"
import { recordErrorTag } from "../telemetry/Spans.js"

export class CheckpointUnavailable extends Data.TaggedError("CheckpointUnavailable")<{
  readonly opId: number
  readonly failures: number
  /** Items whose writes committed, flushed or not. */
  readonly banked: number
  readonly reason: string
}> {
  override get message() {
    return `checkpoint unavailable after ${this.failures} failed flushes (${this.banked} items banked): ${this.reason}`
  }
  get hint() {
    return "the direct database connection (DIRECT_DATABASE_URL) is failing; imported items are safe, rerun to continue"
  }
}

export interface FlushPolicy {
  readonly flushEvery: Duration.Duration
  readonly flushAt: number
  readonly maxFailures: number
  readonly finalFlushTimeout: Duration.Duration
  readonly retry: RetryPolicy
}

export const defaultFlushPolicy: FlushPolicy = {
  flushEvery: Duration.seconds(10),
  flushAt: 1000,
  maxFailures: 3,
  finalFlushTimeout: Duration.seconds(5),
  retry: { base: "200 millis", cap: "2 seconds", retries: 3 }
}

export interface Checkpoint {
  readonly opId: number
  /** Records that the writes of `items` committed. */
  readonly bank: (items: ReadonlyArray<BankedItem>) => Effect.Effect<void>
  /** Flushes what is pending now. */
  readonly flush: Effect.Effect<void>
  /**
   * Drops what is pending: for an op that just finished (its banked items were
   * deleted with it), so that no later flush writes them back.
   */
  readonly discard: Effect.Effect<void>
  /** Fails with CheckpointUnavailable once flushing gave up; never succeeds. */
  readonly failed: Effect.Effect<never, CheckpointUnavailable>
  /** Items banked so far in this op (flushed before this process, flushed, pending). */
  readonly banked: Effect.Effect<number>
  readonly pending: Effect.Effect<number>
}

// Untraced: its flushes, in a fiber it forks, are children of the sync's span.
export const make = Effect.fnUntraced(function* (
  opId: number,
  alreadyBanked: number,
  policy: FlushPolicy = defaultFlushPolicy
) {
  const store = yield* CheckpointStore
  const pending = yield* Ref.make(new Map<string, string>())
  const flushed = yield* Ref.make(alreadyBanked)
  const consecutiveFailures = yield* Ref.make(0)
  const everBanked = yield* Ref.make(false)
  const failed = yield* Deferred.make<never, CheckpointUnavailable>()
  const wake = yield* Queue.sliding<void>(1)
  const oneFlushAtATime = yield* Effect.makeSemaphore(1)

  const flush = oneFlushAtATime.withPermits(1)(
    Effect.gen(function* () {
      const delta = yield* Ref.getAndSet(pending, new Map<string, string>())
      if (delta.size === 0) return
      const items = [...delta].map(([key, version]) => ({ key, version }))
      const written = yield* store.append(opId, items).pipe(
        Effect.tapError((error) =>
          Effect.logDebug(`checkpoint write of ${items.length} items failed: ${error.message}`)
        ),
        retryTransient(policy.retry),
        Metrics.timedIn(Metrics.flushLatency),
        recordErrorTag,
        Effect.withSpan("tidemark.checkpoint.flush", {
          attributes: { "tidemark.op": opId, "tidemark.items": items.length }
        }),
        Effect.either
      )
      if (written._tag === "Right") {
        yield* Ref.update(flushed, (n) => n + delta.size)
        yield* Ref.set(consecutiveFailures, 0)
        return
      }
      // Items banked meanwhile are newer than the failed delta's: they win.
      yield* Ref.update(pending, (current) => new Map([...delta, ...current]))
      const failures = yield* Ref.updateAndGet(consecutiveFailures, (n) => n + 1)
      yield* Effect.logWarning(`checkpoint flush failed (${failures} in a row): ${written.left.message}`)
      if (failures >= policy.maxFailures) {
        const banked = (yield* Ref.get(flushed)) + (yield* Ref.get(pending)).size
        yield* Deferred.fail(
          failed,
          new CheckpointUnavailable({ opId, failures, banked, reason: written.left.message })
        )
      }
    })
  )

  const flushLoop = Effect.forever(
    Effect.zipRight(Effect.raceFirst(Effect.sleep(policy.flushEvery), Queue.take(wake)), flush)
  )
  yield* Effect.forkScoped(flushLoop)
  yield* Effect.addFinalizer(() =>
    flush.pipe(
      Effect.timeout(policy.finalFlushTimeout),
      Effect.catchAll(() => Effect.logWarning("final checkpoint flush timed out; a rerun redoes the unflushed items"))
    )
  )

  const bank = (items: ReadonlyArray<BankedItem>) =>
    Effect.gen(function* () {
      // The pending map is mutated in place (copying it per batch would cost O(n²));
      // a flush swaps in a new one before it reads the old.
      const size = yield* Ref.modify(pending, (map) => {
        for (const item of items) map.set(item.key, item.version)
        return [map.size, map]
      })
      const first = !(yield* Ref.getAndSet(everBanked, true))
      if (first || size >= policy.flushAt) yield* Queue.offer(wake, undefined)
    })

  return {
    opId,
    bank,
    flush,
    discard: Ref.set(pending, new Map<string, string>()),
    failed: Deferred.await(failed),
    banked: Effect.zipWith(Ref.get(flushed), Ref.get(pending), (done, waiting) => done + waiting.size),
    pending: Effect.map(Ref.get(pending), (map) => map.size)
  } satisfies Checkpoint
})
