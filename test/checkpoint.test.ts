import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Exit, Fiber, FiberId, Layer, Option, Queue, Ref, Scope, TestClock } from "effect"
import { MainDb, transaction } from "../src/db/Database.js"
import * as Migrations from "../src/db/Migrations.js"
import * as Checkpoint from "../src/checkpoint/Checkpoint.js"
import { CheckpointStore } from "../src/checkpoint/CheckpointStore.js"
import * as MemoryCheckpointStore from "../src/checkpoint/MemoryCheckpointStore.js"
import * as PgCheckpointStore from "../src/checkpoint/PgCheckpointStore.js"
import * as TestDatabase from "./support/TestDatabase.js"

/** Records each append's size (or its failure), and can make appends fail. */
const probedStore = Effect.gen(function* () {
  const appends = yield* Queue.unbounded<number | "failed">()
  const failing = yield* Ref.make(false)
  const inner = yield* CheckpointStore
  const store = CheckpointStore.of({
    ...inner,
    append: (opId, items) =>
      Ref.get(failing).pipe(
        Effect.flatMap((fail) =>
          fail
            ? Effect.fail(new SqlError({ cause: new Error("Connection terminated unexpectedly"), message: "injected" }))
            : inner.append(opId, items)
        ),
        Effect.tapBoth({
          onFailure: () => Queue.offer(appends, "failed"),
          onSuccess: () => Queue.offer(appends, items.length)
        })
      )
  })
  return { appends, failing, store }
}).pipe(Effect.provide(MemoryCheckpointStore.layer))

const item = (i: number) => ({ key: `file-${i}.md`, version: `v${i}` })
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

/** How many of the items numbered `indexes` the store holds for `opId`. */
const bankedOf = (store: CheckpointStore["Type"], opId: number, indexes: ReadonlyArray<number>) =>
  Effect.map(
    store.bankedAmong(
      opId,
      indexes.map((i) => item(i).key)
    ),
    (found) => found.size
  )

describe("checkpoint flush policy (TestClock)", () => {
  it.scoped("flushes the first banked item at once, then every 10 s", () =>
    Effect.gen(function* () {
      const { appends, store } = yield* probedStore
      const checkpoint = yield* Checkpoint.make(1, 0).pipe(Effect.provideService(CheckpointStore, store))
      yield* checkpoint.bank([item(0)])
      expect(yield* Queue.take(appends)).toBe(1)
      for (let i = 1; i <= 5; i++) yield* checkpoint.bank([item(i)])
      yield* TestClock.adjust("9 seconds")
      expect(yield* Queue.size(appends)).toBe(0)
      yield* TestClock.adjust("1 second")
      expect(yield* Queue.take(appends)).toBe(5)
      expect(yield* checkpoint.banked).toBe(6)
      // Nothing pending: the next tick writes nothing.
      yield* TestClock.adjust("10 seconds")
      expect(yield* Queue.size(appends)).toBe(0)
    })
  )

  it.scoped("flushes early once 1000 items wait", () =>
    Effect.gen(function* () {
      const { appends, store } = yield* probedStore
      const checkpoint = yield* Checkpoint.make(1, 0).pipe(Effect.provideService(CheckpointStore, store))
      yield* checkpoint.bank([item(0)])
      expect(yield* Queue.take(appends)).toBe(1)
      yield* TestClock.adjust("1 second")
      for (let i = 1; i <= 1000; i++) yield* checkpoint.bank([item(i)])
      expect(yield* Queue.take(appends)).toBe(1000)
    })
  )

  it.effect("the final flush runs when the scope closes, with no time passing", () =>
    Effect.gen(function* () {
      const { appends, store } = yield* probedStore
      const scope = yield* Scope.make()
      const checkpoint = yield* Checkpoint.make(1, 0).pipe(
        Effect.provideService(CheckpointStore, store),
        Scope.extend(scope)
      )
      yield* checkpoint.bank([item(0)])
      expect(yield* Queue.take(appends)).toBe(1)
      for (let i = 1; i <= 7; i++) yield* checkpoint.bank([item(i)])
      yield* Scope.close(scope, Exit.interrupt(FiberId.none))
      expect(yield* Queue.take(appends)).toBe(7)
      expect(yield* bankedOf(store, 1, range(0, 8))).toBe(8)
    })
  )

  it.scoped(
    "a failed flush keeps its items; three in a row make the checkpoint unavailable, saying how many are banked",
    () =>
      Effect.gen(function* () {
        const { appends, failing, store } = yield* probedStore
        const checkpoint = yield* Checkpoint.make(7, 0).pipe(Effect.provideService(CheckpointStore, store))
        yield* Ref.set(failing, true)
        const unavailable = yield* Effect.fork(Effect.flip(checkpoint.failed))
        for (let i = 0; i < 4; i++) yield* checkpoint.bank([item(i)])
        // The first item woke a flush at once. Each flush tries 1 + 3 times (backoff under 2 s),
        // then gives up until the next tick, 10 s later.
        for (let flush = 1; flush <= 3; flush++) {
          yield* TestClock.adjust(flush === 1 ? "5 seconds" : "12 seconds")
          for (let attempt = 0; attempt < 4; attempt++) expect(yield* Queue.take(appends)).toBe("failed")
          if (flush < 3) expect(Option.isNone(yield* Fiber.poll(unavailable))).toBe(true)
        }
        const error = yield* Fiber.join(unavailable)
        expect(error).toMatchObject({ _tag: "CheckpointUnavailable", opId: 7, failures: 3, banked: 4 })
        expect(yield* checkpoint.pending).toBe(4)
        // Nothing was lost: once the store is back, the pending items land.
        yield* Ref.set(failing, false)
        yield* checkpoint.flush
        expect(yield* bankedOf(store, 7, range(0, 4))).toBe(4)
      })
  )

  it.scoped("concurrent workers banking while flushes run lose nothing", () =>
    Effect.gen(function* () {
      const { store } = yield* probedStore
      const checkpoint = yield* Checkpoint.make(3, 0).pipe(Effect.provideService(CheckpointStore, store))
      yield* Effect.forEach(
        Array.from({ length: 8 }, (_, worker) => worker),
        (worker) =>
          Effect.forEach(
            Array.from({ length: 700 }, (_, i) => i),
            (i) =>
              Effect.zipRight(
                checkpoint.bank([item(worker * 1000 + i)]),
                i % 50 === 0 ? TestClock.adjust("1 second") : Effect.void
              ),
            { discard: true }
          ),
        { concurrency: "unbounded", discard: true }
      )
      yield* checkpoint.flush
      const all = range(0, 8).flatMap((worker) => range(0, 700).map((i) => worker * 1000 + i))
      expect(yield* bankedOf(store, 3, all)).toBe(5600)
      expect(yield* checkpoint.banked).toBe(5600)
    })
  )
})

const pgStore = PgCheckpointStore.layer.pipe(
  Layer.provideMerge(Layer.effectDiscard(Effect.orDie(Migrations.migrate())))
)

const newOp = Effect.flatMap(MainDb, ({ sql }) =>
  Effect.gen(function* () {
    const source = `src-${Math.random().toString(36).slice(2)}`
    yield* sql`INSERT INTO tidemark.sources (id, kind, root) VALUES (${source}, 'dir', '/tmp')`
    const [op] = yield* sql<{ id: string }>`
      INSERT INTO tidemark.ops (source_id, target, fencing_token) VALUES (${source}, '{}'::jsonb, 1) RETURNING id`
    return Number(op!.id)
  })
)

const opItems = (opId: number) =>
  Effect.flatMap(
    MainDb,
    ({ sql }) => sql<{ n: string }>`SELECT count(*) AS n FROM tidemark.op_items WHERE op_id = ${opId}`
  ).pipe(Effect.map((rows) => Number(rows[0]!.n)))

const bankedColumn = (opId: number) =>
  Effect.flatMap(MainDb, ({ sql }) => sql<{ banked: string }>`SELECT banked FROM tidemark.ops WHERE id = ${opId}`).pipe(
    Effect.map((rows) => Number(rows[0]!.banked))
  )

layer(TestDatabase.layer("checkpoint"), { excludeTestServices: true })("PostgreSQL checkpoint store", (it) => {
  it.effect("appends in statements of at most 1000 rows, counts new items once, and answers per batch", () =>
    Effect.gen(function* () {
      const store = yield* CheckpointStore
      const opId = yield* newOp
      yield* store.append(
        opId,
        Array.from({ length: 2500 }, (_, i) => item(i))
      )
      expect(yield* opItems(opId)).toBe(2500)
      expect(yield* bankedColumn(opId)).toBe(2500)
      // Re-banking an item at a new version replaces it without counting it twice.
      yield* store.append(opId, [{ key: "file-1.md", version: "v1-changed" }, item(2500)])
      expect(yield* bankedColumn(opId)).toBe(2501)
      // A write retried after it had landed changes nothing.
      yield* store.append(opId, [{ key: "file-1.md", version: "v1-changed" }, item(2500)])
      expect(yield* bankedColumn(opId)).toBe(2501)
      expect(yield* opItems(opId)).toBe(2501)
      const found = yield* store.bankedAmong(opId, ["file-1.md", "file-2.md", "absent.md"])
      expect(Object.fromEntries(found)).toEqual({ "file-1.md": "v1-changed", "file-2.md": "v2" })
    }).pipe(Effect.provide(pgStore))
  )

  it.effect("banks any key: quotes, backslashes, newlines, other scripts, a lone surrogate", () =>
    Effect.gen(function* () {
      const store = yield* CheckpointStore
      const opId = yield* newOp
      const keys = [
        'a "quoted", {braced} key.md',
        "back\\slash\\ud800.md",
        "new\nline.md",
        "日本語/ノート.md",
        "lone-\ud800.md"
      ]
      yield* store.append(
        opId,
        keys.map((key, i) => ({ key, version: `v${i}` }))
      )
      // A lone surrogate is sent as U+FFFD, as the driver sends it in any other parameter.
      const stored = [...keys.slice(0, 4), "lone-\ufffd.md"]
      const found = yield* store.bankedAmong(opId, stored)
      expect(Object.fromEntries(found)).toEqual(Object.fromEntries(stored.map((key, i) => [key, `v${i}`])))
      expect(yield* bankedColumn(opId)).toBe(5)
    }).pipe(Effect.provide(pgStore))
  )

  it.effect("a checkpoint write inside a MainDb transaction that rolls back still lands", () =>
    Effect.gen(function* () {
      const store = yield* CheckpointStore
      const { sql } = yield* MainDb
      const opId = yield* newOp
      yield* Effect.flip(transaction(sql)(Effect.zipRight(store.append(opId, [item(1)]), Effect.fail("rollback"))))
      expect(yield* opItems(opId)).toBe(1)
    }).pipe(Effect.provide(pgStore))
  )
})
