import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, Schedule } from "effect"
import { MainDb, transaction } from "../src/db/Database.js"
import * as Migrations from "../src/db/Migrations.js"
import { LeaseStore } from "../src/lock/LeaseStore.js"
import * as PgLeaseStore from "../src/lock/PgLeaseStore.js"
import * as TestDatabase from "./support/TestDatabase.js"

const holder = (name: string) => ({ holder: name, host: "test", pid: process.pid })

layer(TestDatabase.layer("fence_bound"), { excludeTestServices: true })("the fence's idle bound (PostgreSQL)", (it) => {
  it.effect("a holder frozen inside its fenced transaction does not hold the takeover back", () =>
    Effect.gen(function* () {
      yield* Migrations.migrate()
      const store = yield* LeaseStore
      const { sql } = yield* MainDb
      const ttl = Duration.millis(300)
      const granted = yield* store.tryAcquire("frozen", holder("first"), ttl)
      if (granted._tag !== "Granted") throw new Error("the first grant failed")
      // The first holder opens its write transaction, passes the fence, then falls silent
      // (a frozen process): it keeps the lease row locked FOR SHARE until its transaction ends.
      const fenced = yield* Effect.makeLatch()
      const frozen = yield* Effect.fork(
        transaction(sql)(
          Effect.zipRight(
            store.fence("frozen", granted.token, Duration.millis(200)),
            Effect.zipRight(fenced.open, Effect.never)
          )
        )
      )
      yield* fenced.await
      // Once the lease expired, a second holder gets it: the server ended the silent
      // transaction, so the grant does not wait behind its row lock.
      const second = yield* store.tryAcquire("frozen", holder("second"), Duration.seconds(30)).pipe(
        Effect.filterOrFail(
          (result) => result._tag === "Granted",
          () => new Error("busy")
        ),
        Effect.retry(Schedule.spaced("50 millis")),
        Effect.timeoutFail({
          duration: "10 seconds",
          onTimeout: () => new Error("the takeover waited on the frozen holder")
        })
      )
      expect(second._tag).toBe("Granted")
      yield* Fiber.interrupt(frozen)
    }).pipe(Effect.provide(PgLeaseStore.layer))
  )
})
