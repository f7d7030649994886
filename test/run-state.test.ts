import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it, layer, type Vitest } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Queue, Ref, TestClock, TestContext } from "effect"
import { MainDb } from "../src/db/Database.js"
import * as Migrations from "../src/db/Migrations.js"
import * as MemoryRunStateStore from "../src/state/MemoryRunStateStore.js"
import * as PgRunStateStore from "../src/state/PgRunStateStore.js"
import * as RunState from "../src/state/RunState.js"
import { RunStateStore } from "../src/state/RunStateStore.js"
import * as Block from "./support/block.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as TestDatabase from "./support/TestDatabase.js"

/**
 * Counts saves and can make them fail; wraps whichever store is provided.
 * `landed(n)` waits until n saves have completed: a save started by a tick of
 * the TestClock may still be waiting for PostgreSQL when `adjust` returns.
 */
const probed = <A, E, R>(
  body: (probe: {
    saves: Ref.Ref<number>
    failing: Ref.Ref<boolean>
    landed: (n: number) => Effect.Effect<number>
  }) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    const inner = yield* RunStateStore
    const saves = yield* Ref.make(0)
    const failing = yield* Ref.make(false)
    const completed = yield* Queue.unbounded<number>()
    const landed = (n: number) => Effect.iterate(0, { while: (k) => k < n, body: () => Queue.take(completed) })
    const store = RunStateStore.of({
      ...inner,
      save: (sourceId, groups, flushedAt) =>
        Effect.flatMap(Ref.get(failing), (fail) =>
          fail
            ? Effect.fail(new SqlError({ cause: new Error("connection refused"), message: "injected" }))
            : Effect.zipRight(
                inner.save(sourceId, groups, flushedAt),
                Effect.flatMap(
                  Ref.updateAndGet(saves, (n) => n + 1),
                  (n) => Queue.offer(completed, n)
                )
              )
        )
    })
    return yield* Effect.provideService(body({ saves, failing, landed }), RunStateStore, store)
  })

const initial = (opId: number): RunState.RunStateValue => ({
  identity: { opId, target: {}, phase: "planning", startedAt: 0 },
  counts: RunState.freshCounts,
  rate: RunState.freshRate
})

const policy: RunState.RunStatePolicy = { flushEvery: Duration.seconds(30), finalFlushTimeout: Duration.seconds(1) }

/** The same behaviour, against the in-memory store (simulation) and PostgreSQL. */
const behaviour = <R>(
  it: Vitest.MethodsNonLive<R | RunStateStore, boolean>,
  sourceFor: (name: string) => Effect.Effect<string, unknown, R | RunStateStore>,
  /** Whatever the suite needs around each test (TestClock where the layer excludes it). */
  around: <A, E, R2>(self: Effect.Effect<A, E, R2>) => Effect.Effect<A, E, R2> = (self) => self
) => {
  it.scoped("writes nothing while clean; a change waits for the next 30 s tick", () =>
    around(
      probed(({ saves, landed }) =>
        Effect.gen(function* () {
          const sourceId = yield* sourceFor("clean")
          const state = yield* RunState.make(sourceId, initial(1), policy)
          expect(yield* state.flush).toBe(true)
          yield* TestClock.adjust("90 seconds")
          expect(yield* Ref.get(saves)).toBe(1)

          yield* state.update((v) => ({ ...v, counts: { ...v.counts, done: 10 } }))
          yield* TestClock.adjust("29 seconds")
          expect(yield* Ref.get(saves)).toBe(1)
          yield* TestClock.adjust("1 second")
          yield* landed(2)
          expect(yield* Ref.get(saves)).toBe(2)
          expect(yield* state.dirty).toBe(false)
          yield* TestClock.adjust("60 seconds")
          expect(yield* Ref.get(saves)).toBe(2)
          const restored = yield* RunState.restore(sourceId)
          expect(Option.getOrThrow(restored).counts).toEqual(Option.some({ ...RunState.freshCounts, done: 10 }))
        })
      )
    )
  )

  it.scoped("a failed flush keeps the state dirty; the next tick writes it", () =>
    around(
      probed(({ saves, failing, landed }) =>
        Effect.gen(function* () {
          const sourceId = yield* sourceFor("failing")
          const state = yield* RunState.make(sourceId, initial(2), policy)
          yield* state.flush
          yield* Ref.set(failing, true)
          yield* state.update((v) => ({ ...v, counts: { ...v.counts, done: 5 } }))
          yield* TestClock.adjust("30 seconds")
          expect(yield* state.dirty).toBe(true)
          expect(yield* Ref.get(saves)).toBe(1)
          yield* Ref.set(failing, false)
          yield* TestClock.adjust("30 seconds")
          yield* landed(2)
          expect(yield* state.dirty).toBe(false)
          expect(yield* Ref.get(saves)).toBe(2)
          const restored = Option.getOrThrow(yield* RunState.restore(sourceId))
          expect(Option.getOrThrow(restored.counts).done).toBe(5)
        })
      )
    )
  )

  it.scoped("identity changes are written at once, without waiting for the tick", () =>
    around(
      probed(({ saves }) =>
        Effect.gen(function* () {
          const sourceId = yield* sourceFor("identity")
          const state = yield* RunState.make(sourceId, initial(3), policy)
          yield* state.updateIdentity((i) => ({ ...i, phase: "importing" }))
          expect(yield* Ref.get(saves)).toBe(1)
          const restored = Option.getOrThrow(yield* RunState.restore(sourceId))
          expect(Option.getOrThrow(restored.identity).phase).toBe("importing")
        })
      )
    )
  )

  it.effect("the scope's final flush writes what changed since the last tick", () =>
    around(
      probed(({ saves }) =>
        Effect.gen(function* () {
          const sourceId = yield* sourceFor("final")
          yield* Effect.scoped(
            Effect.gen(function* () {
              const state = yield* RunState.make(sourceId, initial(4), policy)
              yield* state.update((v) => ({ ...v, counts: { ...v.counts, done: 7 } }))
            })
          )
          expect(yield* Ref.get(saves)).toBe(1)
          const restored = Option.getOrThrow(yield* RunState.restore(sourceId))
          expect(Option.getOrThrow(restored.counts).done).toBe(7)
        })
      )
    )
  )

  it.effect("a stored group that does not decode starts afresh; the others are kept", () =>
    Effect.gen(function* () {
      const sourceId = yield* sourceFor("garbage")
      const store = yield* RunStateStore
      yield* store.save(
        sourceId,
        {
          identity: { opId: 9, target: { commit: "abc" }, phase: "importing", startedAt: 5 },
          counts: "garbage",
          rate: { itemsPerSecond: "fast", bytesPerSecond: -1, samples: 2 }
        },
        1000
      )
      const restored = Option.getOrThrow(yield* RunState.restore(sourceId))
      expect(restored.identity).toEqual(
        Option.some({ opId: 9, target: { commit: "abc" }, phase: "importing", startedAt: 5 })
      )
      expect([restored.counts, restored.rate]).toEqual([Option.none(), Option.none()])
      expect(restored.rejected).toEqual(["counts", "rate"])
    })
  )
}

layer(MemoryRunStateStore.layer)("run state, simulated (in-memory store, TestClock)", (it) =>
  behaviour(it, (name) => Effect.succeed(`memory-${name}`))
)

const pgLayer = PgRunStateStore.layer.pipe(Layer.provideMerge(TestDatabase.layer("run_state")))

layer(pgLayer, { excludeTestServices: true })("run state, PostgreSQL store (TestClock)", (it) => {
  const sourceFor = (name: string) =>
    Effect.gen(function* () {
      yield* Migrations.migrate()
      const { sql } = yield* MainDb
      const id = `pg-${name}-${Math.random().toString(36).slice(2)}`
      yield* sql`INSERT INTO tidemark.sources (id, kind, root) VALUES (${id}, 'dir', '/run-state')`
      return id
    })
  behaviour(it, sourceFor, (self) => Effect.provide(self, TestContext.TestContext))

  it.effect("hand-written garbage in every column restores safely", () =>
    Effect.gen(function* () {
      const sourceId = yield* sourceFor("sql-garbage")
      const { sql } = yield* MainDb
      yield* sql`
        INSERT INTO tidemark.run_state (source_id, identity, counts, rate, flushed_at)
        VALUES (${sourceId}, '{"opId": -3, "phase": 7}', '[1, 2, 3]', 'null', now())`
      const restored = Option.getOrThrow(yield* RunState.restore(sourceId))
      expect(restored.rejected).toEqual(["identity", "counts", "rate"])
    })
  )
})

describe("run state of a real sync (real CLI, real PostgreSQL)", () => {
  it("after SIGKILL, status shows the last flush; the rerun carries the counts on across the restart", async () => {
    const url = await TestDatabase.createDatabase("run_state_cli")
    const env = { DATABASE_URL: url }
    try {
      const migrated = await Cli.run(["migrate"], env)
      expect(migrated.code, migrated.stderr).toBe(0)
      // The sync waits at the held key, after the batches before it, as long as the test likes.
      const root = Folder.held(3000)
      const total = 6001
      const held = await Block.blockKey(url, root, Folder.heldKey)
      const saved = async () =>
        (
          await Folder.query<{ identity: RunState.Identity; counts: RunState.Counts; flushed_at: Date }>(
            url,
            "SELECT identity, counts, flushed_at FROM tidemark.run_state WHERE source_id = $1",
            [root]
          )
        )[0]
      const child = Cli.tidemark(["sync", root, "--json", "--concurrency", "1", "--state-flush-every", "300ms"], env)
      let first = await saved()
      while (first === undefined || first.counts.done === 0) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        first = await saved()
      }
      // A sync running in another process right now: status shows its saved progress.
      const during = await Cli.run(["status", "--json"], env)
      const running = (JSON.parse(during.stdout) as Array<Record<string, any>>).find((s) => s["id"] === root)!
      expect(running["run"]).toMatchObject({ phase: "importing", planned: total })
      expect(running["run"]["done"]).toBeGreaterThan(0)
      // Wait for one more periodic flush, then kill.
      let later = await saved()
      while (later!.flushed_at.getTime() === first.flushed_at.getTime()) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        later = await saved()
      }
      child.process.kill("SIGKILL")
      await child.finished
      await held.release()
      const lastFlush = (await saved())!

      const status = await Cli.run(["status", "--json"], env)
      const after = (JSON.parse(status.stdout) as Array<Record<string, any>>).find((s) => s["id"] === root)!
      expect(after["run"]).toMatchObject({
        opId: lastFlush.identity.opId,
        phase: "importing",
        done: lastFlush.counts.done,
        planned: total
      })
      expect(after["run"]["itemsPerSecond"]).toBeGreaterThan(0)
      expect(after["run"]["etaSeconds"]).toBeGreaterThan(0)
      expect(after["run"]["savedAgeSeconds"]).toBeGreaterThanOrEqual(0)

      const rerun = await Cli.run(["sync", root, "--json", "--state-flush-every", "300ms"], env)
      expect(rerun.code, rerun.stderr).toBe(0)
      const final = (await saved())!
      expect(final.identity).toMatchObject({
        opId: lastFlush.identity.opId,
        phase: "done",
        startedAt: lastFlush.identity.startedAt
      })
      // Items written but not yet banked when the process died are found stored by the
      // rerun's plan: they are neither redone nor counted again.
      expect(final.counts).toMatchObject({ done: final.counts.planned, restarts: 1 })
      expect(final.counts.done).toBeGreaterThan(lastFlush.counts.done)
      expect(await Folder.storedDocuments(url, root)).toEqual(Folder.expectedDocuments(root))
    } finally {
      await TestDatabase.dropDatabase(url)
    }
  })
})
