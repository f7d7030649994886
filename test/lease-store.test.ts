import { describe, expect, layer } from "@effect/vitest"
import {
  Deferred,
  Duration,
  Effect,
  Fiber,
  Layer,
  Option,
  Queue,
  Schedule,
  type Scope,
  TestClock,
  TestContext
} from "effect"
import { MainDb, transaction } from "../src/db/Database.js"
import * as Migrations from "../src/db/Migrations.js"
import { LeaseLock } from "../src/lock/LeaseLock.js"
import * as LeaseLockModule from "../src/lock/LeaseLock.js"
import { LeaseStore } from "../src/lock/LeaseStore.js"
import * as MemoryLeaseStore from "../src/lock/MemoryLeaseStore.js"
import * as PgLeaseStore from "../src/lock/PgLeaseStore.js"
import { spawnSync } from "node:child_process"
import {
  abandonedLeaseBehaviour,
  Advance,
  leaseLockBehaviour,
  leaseStoreContract,
  leaseWaitBehaviour
} from "./support/leaseContract.js"
import { makeProbe, probed } from "./support/LeaseStoreProbe.js"
import * as TestDatabase from "./support/TestDatabase.js"

/** The pid of a process that has exited. */
const deadPid = spawnSync(process.execPath, ["-e", "0"]).pid

const memory = Layer.merge(
  MemoryLeaseStore.layer,
  Layer.succeed(Advance, (by) => TestClock.adjust(by))
)

/** PostgreSQL's clock cannot be moved: move the leases into the past instead. */
const postgres = Layer.mergeAll(
  PgLeaseStore.layer,
  Layer.effect(
    Advance,
    Effect.map(MainDb, ({ sql }) => (by: Duration.DurationInput) => {
      const millis = Duration.toMillis(by)
      return sql`
        UPDATE tidemark.locks
           SET acquired_at = acquired_at - ${millis} * interval '1 millisecond',
               heartbeat_at = heartbeat_at - ${millis} * interval '1 millisecond',
               expires_at = expires_at - ${millis} * interval '1 millisecond'`.pipe(Effect.orDie, Effect.asVoid)
    })
  )
).pipe(Layer.provideMerge(Layer.effectDiscard(Effect.orDie(Migrations.migrate()))))

describe("in-memory lease store (TestClock)", () => {
  layer(Layer.empty)((it) => {
    const provide = <A, E>(self: Effect.Effect<A, E, LeaseStore | Advance | Scope.Scope>) =>
      Effect.scoped(self.pipe(Effect.provide(memory)))
    describe("store contract", () => leaseStoreContract(it, provide))
    describe("lease lock", () => leaseLockBehaviour(it, provide))
    describe("waiting", () => leaseWaitBehaviour(it, provide))
    describe("abandoned leases", () => abandonedLeaseBehaviour(it, provide, deadPid))
  })
})

layer(TestDatabase.layer("lease_store"), { excludeTestServices: true })("PostgreSQL lease store", (it) => {
  const provide = <A, E>(self: Effect.Effect<A, E, LeaseStore | Advance | Scope.Scope>) =>
    Effect.scoped(self.pipe(Effect.provide(postgres)))
  describe("store contract", () => leaseStoreContract(it, provide))
  // The lease logic's own timing runs on TestClock; the store is real.
  describe("lease lock", () =>
    leaseLockBehaviour(it, (self) => provide(self).pipe(Effect.provide(TestContext.TestContext))))
  describe("abandoned leases", () => abandonedLeaseBehaviour(it, provide, deadPid))
})

const waitUntil = <E, R>(condition: Effect.Effect<boolean, E, R>) =>
  condition.pipe(
    Effect.repeat({ until: (done) => done, schedule: Schedule.spaced("10 millis") }),
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("condition never held") })
  )

const blockedOnALock = Effect.flatMap(
  MainDb,
  ({ sql }) =>
    sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock' AND application_name = 'tidemark:direct'`
).pipe(Effect.map((rows) => rows[0]!.n > 0))

layer(TestDatabase.layer("lease_fence"), { excludeTestServices: true })("fencing on PostgreSQL", (it) => {
  it.scoped("a takeover waits for an in-flight fenced batch, and every later batch of the old holder is refused", () =>
    Effect.gen(function* () {
      const store = yield* LeaseStore
      const advance = yield* Advance
      const { sql } = yield* MainDb
      yield* sql`CREATE TABLE batches (token bigint NOT NULL)`
      const name = "fence:in-flight"
      const old = yield* store.tryAcquire(name, { holder: "old", host: "h", pid: 1 }, Duration.seconds(30))
      const oldToken = old._tag === "Granted" ? old.token : -1
      // The old holder's lease has expired (it was paused), but nobody took it over yet:
      // its batch still passes the fence.
      yield* advance("31 seconds")
      const inBatch = yield* Deferred.make<void>()
      const finishBatch = yield* Deferred.make<void>()
      const batch = yield* Effect.fork(
        transaction(sql)(
          Effect.gen(function* () {
            yield* store.fence(name, oldToken)
            yield* sql`INSERT INTO batches VALUES (${oldToken})`
            yield* Deferred.succeed(inBatch, undefined)
            yield* Deferred.await(finishBatch)
          })
        )
      )
      yield* Deferred.await(inBatch)
      const takeover = yield* Effect.fork(
        store.tryAcquire(name, { holder: "new", host: "h", pid: 2 }, Duration.seconds(30))
      )
      // The takeover blocks on the row the batch locked FOR SHARE (FOR KEY SHARE would not block it).
      yield* waitUntil(blockedOnALock)
      expect(Option.isNone(yield* Fiber.poll(takeover))).toBe(true)
      yield* Deferred.succeed(finishBatch, undefined)
      yield* Fiber.join(batch)
      const granted = yield* Fiber.join(takeover)
      expect(granted._tag).toBe("Granted")
      const refused = yield* Effect.flip(
        transaction(sql)(Effect.zipRight(store.fence(name, oldToken), sql`INSERT INTO batches VALUES (${oldToken})`))
      )
      expect(refused).toMatchObject({ _tag: "FencedOut", token: oldToken })
      const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM batches`
      expect(rows[0]!.n).toBe(1)
    }).pipe(Effect.provide(postgres))
  )
})

layer(TestDatabase.layer("lease_saturated", { mainPoolSize: 2 }), { excludeTestServices: true })(
  "renewals and a saturated main pool",
  (it) => {
    it.scoped("the heartbeat still renews while every MainDb connection is busy", () =>
      Effect.gen(function* () {
        const probe = yield* makeProbe
        const { sql } = yield* MainDb
        // Take every connection of the main pool.
        yield* sql.reserve
        yield* sql.reserve
        const queued = yield* Effect.fork(sql`SELECT 1`)
        const lock = yield* LeaseLock.pipe(Effect.provide(LeaseLockModule.layer.pipe(Layer.provide(probed(probe)))))
        const held = yield* Deferred.make<void>()
        yield* Effect.fork(
          lock.withLease("saturated", () => Effect.zipRight(Deferred.succeed(held, undefined), Effect.never))
        )
        yield* Deferred.await(held)
        for (let renewal = 0; renewal < 3; renewal++) {
          yield* TestClock.adjust("10 seconds")
          expect(yield* Queue.take(probe.renewals)).toBe("renewed")
        }
        // Meanwhile a bulk query is still waiting for a main connection.
        expect(Option.isNone(yield* Fiber.poll(queued))).toBe(true)
      }).pipe(Effect.provide(postgres), Effect.provide(TestContext.TestContext))
    )
  }
)
