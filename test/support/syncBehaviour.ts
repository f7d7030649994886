/**
 * The sync program's rules — resume, the mass-change guard, a lost lease, a
 * transient failure, a timeout — written once and run on both deployments:
 * the stores in memory and on PostgreSQL, every timing on `TestClock`. A test
 * moves the clock only after the work has reached an observable point (a
 * batch written, a read waiting), so real I/O never races it.
 */
import { expect, type Vitest } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Option,
  Queue,
  Ref,
  type Scope,
  TestClock
} from "effect"
import { ItemErrorStore } from "../../src/quarantine/ItemErrorStore.js"
import { SinkError, type SinkShape } from "../../src/sink/Sink.js"
import { LeaseStore } from "../../src/lock/LeaseStore.js"
import { initialProgress } from "../../src/sync/Progress.js"
import * as SyncProgram from "../../src/sync/SyncProgram.js"
import type { SyncServices } from "../../src/Tidemark.js"
import { interruptOn } from "../../src/util/interruptOn.js"
import * as SimSource from "./SimSource.js"

/** What a test may look at, whatever the stores are. */
export class Inspect extends Context.Tag("test/Inspect")<
  Inspect,
  {
    /** key → content hash of what the sink holds. */
    readonly stored: (sourceId: string) => Effect.Effect<Record<string, string>>
    /** The source's latest op. */
    readonly lastOp: (
      sourceId: string
    ) => Effect.Effect<{ readonly status: string; readonly restarts: number } | undefined>
  }
>() {}

/** Runs a test's effect on fresh services, with the sink optionally wrapped. */
export type Provide<R = never> = <A, E>(
  self: Effect.Effect<A, E, SyncServices | Inspect | Scope.Scope>,
  wrapSink?: (sink: SinkShape) => SinkShape
) => Effect.Effect<A, E, R>

let counter = 0
const uniqueSource = (label: string) => `sim:${label}:${++counter}:${Math.random().toString(36).slice(2, 8)}`

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

const expectedOf = (files: ReadonlyMap<string, string>) =>
  Object.fromEntries([...files].map(([key, content]) => [key, SimSource.hashOf(content)]))

/** A sink that reports each committed write (its number, from 1) and can act before one. */
const counting =
  (written: Queue.Queue<number>, beforeWrite: (n: number) => Effect.Effect<void, SinkError> = () => Effect.void) =>
  (sink: SinkShape): SinkShape => {
    let writes = 0
    return {
      ...sink,
      write: (sourceId, batch, fence) =>
        Effect.suspend(() => {
          const n = ++writes
          return beforeWrite(n).pipe(
            Effect.zipRight(sink.write(sourceId, batch, fence)),
            Effect.tap(() => Queue.offer(written, n))
          )
        })
    }
  }

/**
 * Waits (in real time, briefly, polling) until some fiber sleeps on the TestClock with a
 * wake-up due within `within` of now: the moment a retry's backoff has begun.
 */
const untilSleepWithin = (within: Duration.DurationInput) =>
  Effect.gen(function* () {
    const bound = Duration.toMillis(within)
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      const due = Chunk.toReadonlyArray(yield* TestClock.sleeps())
      if (due.some((at) => at > now && at - now <= bound)) return
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
    }
  })

const run = (source: SyncProgram.SyncOptions["source"], options: Partial<SyncProgram.SyncOptions> = {}) =>
  SyncProgram.run({ sourceId: source.root, source, concurrency: 1, ...options })

/** A transient failure of the sink's database, as a dropped connection gives. */
const dropped = () =>
  new SinkError({ operation: "write a batch", cause: new Error("Connection terminated unexpectedly") })

export const syncBehaviour = <R>(it: Vitest.MethodsNonLive<R, boolean>, provide: Provide<R>) => {
  it.effect("imports everything, then a second sync reads nothing", () =>
    provide(
      Effect.gen(function* () {
        const inspect = yield* Inspect
        const source = SimSource.make(uniqueSource("first"), SimSource.notes(1200))
        expect(yield* run(source)).toMatchObject({ imported: 1200, read: 1200, failed: 0, resumed: false })
        expect(yield* inspect.stored(source.root)).toEqual(expectedOf(source.files))
        expect(yield* run(source)).toMatchObject({ seen: 1200, unchanged: 1200, read: 0, imported: 0 })
      })
    )
  )

  it.effect("resumes after a crash: what was written and banked is not read again", () =>
    Effect.gen(function* () {
      const written = yield* Queue.unbounded<number>()
      const reachedThird = yield* Deferred.make<void>()
      yield* provide(
        Effect.gen(function* () {
          const inspect = yield* Inspect
          const root = uniqueSource("resume")
          // The third batch's read never ends: the process "dies" there.
          const stalling = SimSource.make(root, SimSource.notes(2200), (batch) =>
            batch === 3 ? Effect.zipRight(Deferred.succeed(reachedThird, undefined), Effect.never) : Effect.void
          )
          const first = yield* Effect.fork(run(stalling))
          yield* Deferred.await(reachedThird)
          expect([yield* Queue.take(written), yield* Queue.take(written)].sort()).toEqual([1, 2])
          yield* Fiber.interrupt(first)
          expect(Object.keys(yield* inspect.stored(root))).toHaveLength(1000)

          const healthy = SimSource.make(root, SimSource.notes(2200))
          const second = yield* run(healthy)
          expect(second).toMatchObject({ resumed: true, restarts: 1, read: 1200, imported: 1200 })
          expect(yield* inspect.stored(root)).toEqual(expectedOf(healthy.files))
          expect(yield* inspect.lastOp(root)).toMatchObject({ status: "done", restarts: 1 })
        }),
        counting(written)
      )
    })
  )

  it.effect("refuses a mass deletion or an empty listing; --allow-mass-change lets it through", () =>
    provide(
      Effect.gen(function* () {
        const inspect = yield* Inspect
        const large = SimSource.make(uniqueSource("mass-large"), SimSource.notes(300))
        const small = SimSource.make(uniqueSource("mass-small"), SimSource.notes(10))
        yield* run(large)
        yield* run(small)
        for (const key of [...large.files.keys()].slice(0, 100)) large.files.delete(key)
        const refused = yield* Effect.flip(run(large))
        expect(refused).toMatchObject({ _tag: "MassChangeRefused", existing: 300, deletes: 100, limit: 60 })
        expect(refused.message).toMatch(/refusing to delete 100 of 300 (documents|items) of /)
        expect(Object.keys(yield* inspect.stored(large.root))).toHaveLength(300)

        small.files.clear()
        const emptied = yield* Effect.flip(run(small))
        expect(emptied.message).toMatch(/refusing to delete all 10 (documents|items) .*: the source lists nothing/)
        expect(Object.keys(yield* inspect.stored(small.root))).toHaveLength(10)

        expect(yield* run(large, { allowMassChange: true })).toMatchObject({ deleted: 100 })
        expect(yield* inspect.stored(large.root)).toEqual(expectedOf(large.files))
      })
    )
  )

  it.effect("refuses a mass import into a stored source, but a resumed op finishes the import it began", () =>
    Effect.gen(function* () {
      const written = yield* Queue.unbounded<number>()
      const reachedSecond = yield* Deferred.make<void>()
      yield* provide(
        Effect.gen(function* () {
          const inspect = yield* Inspect
          const root = uniqueSource("mass-import")
          yield* run(SimSource.make(root, SimSource.notes(100)))
          const grown = { ...SimSource.notes(100), ...SimSource.notes(900, "more") }
          expect(yield* Effect.flip(run(SimSource.make(root, grown)))).toMatchObject({
            _tag: "MassChangeRefused",
            imports: 900,
            limit: 50
          })
          // Allowed, then stopped after its first batch of 500.
          const stalling = SimSource.make(root, grown, (batch) =>
            batch === 2 ? Effect.zipRight(Deferred.succeed(reachedSecond, undefined), Effect.never) : Effect.void
          )
          const allowed = yield* Effect.fork(run(stalling, { allowMassChange: true }))
          yield* Deferred.await(reachedSecond)
          expect(yield* Queue.take(written)).toBe(1)
          yield* Fiber.interrupt(allowed)
          // The rest of that op is not a new mass import: it resumes without being asked again.
          const resumed = yield* run(SimSource.make(root, grown))
          expect(resumed).toMatchObject({ resumed: true, imported: 400 })
          expect(Object.keys(yield* inspect.stored(root))).toHaveLength(1000)
        }),
        counting(written)
      )
    })
  )

  it.effect("a lease taken over mid-run stops the run with LockLost; nothing is written after the takeover", () =>
    Effect.gen(function* () {
      const written = yield* Queue.unbounded<number>()
      yield* provide(
        Effect.gen(function* () {
          const inspect = yield* Inspect
          const leases = yield* LeaseStore
          const root = uniqueSource("takeover")
          const name = `sync:${root}`
          // Before the second batch is read, an operator forces the lease out and a rival takes it.
          const source = SimSource.make(root, SimSource.notes(1500), (batch) =>
            batch === 2
              ? Effect.gen(function* () {
                  yield* Queue.take(written)
                  yield* leases.forceRelease(name)
                  yield* leases.tryAcquire(name, { holder: "rival", host: "elsewhere", pid: 1 }, Duration.seconds(30))
                }).pipe(Effect.orDie)
              : Effect.void
          )
          const lost = yield* Effect.flip(run(source))
          expect(lost).toMatchObject({ _tag: "LockLost", name })
          expect(Object.keys(yield* inspect.stored(root))).toHaveLength(500)
          // The rival still holds it: the lost run released nothing of it.
          expect(Option.getOrUndefined(yield* leases.find(name))?.holder).toBe("rival")
        }),
        counting(written)
      )
    })
  )

  it.effect("a transient failure right after the lease was lost ends with LockLost, never a retry or a skip", () =>
    Effect.gen(function* () {
      const written = yield* Queue.unbounded<number>()
      const root = uniqueSource("lost-then-transient")
      const name = `sync:${root}`
      const leaseStore = yield* Deferred.make<Context.Tag.Service<LeaseStore>>()
      yield* provide(
        Effect.gen(function* () {
          const inspect = yield* Inspect
          yield* Deferred.succeed(leaseStore, yield* LeaseStore)
          const lost = yield* Effect.flip(run(SimSource.make(root, SimSource.notes(1500))))
          // The old behaviour: the whole program was retried, found the lease busy, and
          // the CLI reported "already running; skipped" with exit 0.
          // Told by the lease check after the failure, or by the fence of a batch written beside it.
          expect(lost._tag === "LockLost" && { name: lost.name, reason: lost.reason }).toEqual({
            name,
            reason: expect.stringMatching(/^(taken-over|fenced-out)$/)
          })
          expect(Object.keys(yield* inspect.stored(root))).toHaveLength(500)
          // No retry ran: the op was opened once and never resumed.
          expect(yield* inspect.lastOp(root)).toMatchObject({ status: "open", restarts: 0 })
        }),
        // The second write finds its session gone (the process was paused past its lease),
        // and meanwhile another holder took the lease over.
        counting(written, (n) =>
          n === 2
            ? Effect.gen(function* () {
                expect(yield* Queue.take(written)).toBe(1)
                const leases = yield* Deferred.await(leaseStore)
                yield* leases.forceRelease(name)
                yield* leases.tryAcquire(name, { holder: "successor", host: "h", pid: 2 }, Duration.seconds(30))
                return yield* Effect.fail(dropped())
              }).pipe(Effect.catchTag("SqlError", Effect.die))
            : Effect.void
        )
      )
    })
  )

  it.effect("a transient failure is retried in the same run, which resumes the op", () =>
    Effect.gen(function* () {
      const written = yield* Queue.unbounded<number>()
      const failed = yield* Deferred.make<void>()
      yield* provide(
        Effect.gen(function* () {
          const inspect = yield* Inspect
          const source = SimSource.make(uniqueSource("transient"), SimSource.notes(1500))
          const sync = yield* Effect.fork(run(source))
          yield* Deferred.await(failed)
          // The retry waits ~200 ms (jittered): once it waits, move the clock past it.
          yield* untilSleepWithin("500 millis")
          yield* TestClock.adjust("1 second")
          const summary = yield* Fiber.join(sync)
          expect(summary).toMatchObject({ imported: 1500, recovered: 1, resumed: true, restarts: 1 })
          expect(yield* inspect.stored(source.root)).toEqual(expectedOf(source.files))
        }),
        counting(written, (n) =>
          n === 2 ? Effect.zipRight(Deferred.succeed(failed, undefined), Effect.fail(dropped())) : Effect.void
        )
      )
    })
  )

  it.effect("a run stopped by a timeout keeps what it banked, and the next run does only the rest", () =>
    Effect.gen(function* () {
      const written = yield* Queue.unbounded<number>()
      yield* provide(
        Effect.gen(function* () {
          const inspect = yield* Inspect
          const root = uniqueSource("timeout")
          // Each batch takes a second to read; the run may take five.
          const reading = yield* Queue.unbounded<number>()
          const slow = SimSource.make(root, SimSource.notes(5000), (batch) =>
            Effect.zipRight(Queue.offer(reading, batch), Effect.sleep("1 second"))
          )
          const progress = yield* Ref.make(initialProgress)
          const bounded = yield* Effect.fork(
            interruptOn(
              run(slow, { progress }),
              Effect.zipRight(Effect.sleep("5 seconds"), Effect.fail("timeout" as const))
            )
          )
          for (let batch = 1; batch <= 3; batch++) {
            expect(yield* Queue.take(reading)).toBe(batch)
            yield* TestClock.adjust("1 second")
            expect(yield* Queue.take(written)).toBe(batch)
          }
          yield* TestClock.adjust("2 seconds")
          expect(failureOf(yield* Fiber.await(bounded))).toBe("timeout")
          const banked = (yield* Ref.get(progress)).banked
          expect(banked).toBeGreaterThanOrEqual(1500)
          expect(banked).toBeLessThan(5000)
          expect(Object.keys(yield* inspect.stored(root))).toHaveLength(banked)

          const rest = yield* run(SimSource.make(root, SimSource.notes(5000)))
          expect(rest).toMatchObject({ resumed: true, read: 5000 - banked, imported: 5000 - banked })
          expect(yield* inspect.stored(root)).toEqual(expectedOf(slow.files))
        }),
        counting(written)
      )
    })
  )

  it.effect("a sink's rejections are recorded as item errors by the sync, and cleared when they import", () =>
    provide(
      Effect.gen(function* () {
        const store = yield* ItemErrorStore
        const root = uniqueSource("rejected")
        const source = SimSource.make(root, { ...SimSource.notes(20), "bad/reject-me.md": "# rejected\n" })
        expect(yield* run(source)).toMatchObject({ imported: 20, failed: 1 })
        expect(yield* store.recent(root, 10)).toMatchObject([
          { key: "bad/reject-me.md", error: "rejected by the sink" }
        ])
        source.files.set("bad/reject-me.md", "# fine now\n")
        expect(yield* run(source)).toMatchObject({ imported: 1, failed: 0 })
        expect(yield* store.recent(root, 10)).toEqual([])
        // A rejected file that is then deleted has its error cleared too.
        source.files.set("bad/reject-me.md", "# rejected again\n")
        yield* run(source)
        source.files.delete("bad/reject-me.md")
        yield* run(source)
        expect(yield* store.keys(root)).toEqual([])
      }),
      (sink) => ({
        ...sink,
        write: (sourceId, batch, fence) =>
          Effect.map(
            sink.write(
              sourceId,
              {
                ...batch,
                items: batch.items.filter((item) => !Buffer.from(item.content).toString().includes("rejected"))
              },
              fence
            ),
            (rejected) => [
              ...rejected,
              ...batch.items
                .filter((item) => Buffer.from(item.content).toString().includes("rejected"))
                .map((item) => ({ key: item.key, version: item.version, error: "rejected by the sink" }))
            ]
          )
      })
    )
  )
}
