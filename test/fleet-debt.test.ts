/**
 * In a fleet worker, the transaction that records a source's maintenance debt
 * also queues its `maintain` job: both commit, or neither.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Either, FiberRef, Layer } from "effect"
import { MainDb, transaction } from "../src/db/Database.js"
import * as Migrations from "../src/db/Migrations.js"
import * as Boss from "../src/fleet/Boss.js"
import { maintainInTransaction } from "../src/fleet/Worker.js"
import { debtRecorded, recordIn } from "../src/maintenance/PgDebtStore.js"
import * as TestDatabase from "./support/TestDatabase.js"

const migrated = Layer.effectDiscard(Effect.orDie(Migrations.migrate()))

layer(
  Boss.layer({ role: "client" }).pipe(
    Layer.provideMerge(migrated),
    Layer.provideMerge(TestDatabase.layer("fleet_debt"))
  ),
  { excludeTestServices: true }
)("debt recorded by a fleet job", (it) => {
  const maintainJobs = (source: string) =>
    Effect.flatMap(
      MainDb,
      ({ sql }) =>
        sql<{
          n: number
        }>`SELECT count(*)::int AS n FROM tidemark_boss.job WHERE name = ${Boss.queues.maintain} AND singleton_key = ${source}`
    ).pipe(Effect.map((rows) => rows[0]!.n))

  it.effect("queues the maintain job in its own transaction: rolled back together, committed together", () =>
    Effect.gen(function* () {
      const boss = yield* Boss.Boss
      const { sql } = yield* MainDb
      yield* sql`INSERT INTO tidemark.sources (id, kind, root) VALUES ('debt-a', 'dir', '/a')`
      const inJob = <A, E, R>(self: Effect.Effect<A, E, R>) =>
        Effect.locally(self, debtRecorded, maintainInTransaction(boss))

      class Abort {
        readonly _tag = "Abort"
      }
      const aborted = yield* Effect.either(
        inJob(transaction(sql)(Effect.zipRight(recordIn(sql, "debt-a", ["search"], 1), Effect.fail(new Abort()))))
      )
      expect(Either.isLeft(aborted)).toBe(true)
      expect(yield* maintainJobs("debt-a")).toBe(0)
      expect(yield* sql`SELECT 1 FROM tidemark.maintenance_debt WHERE source_id = 'debt-a'`).toEqual([])

      yield* inJob(transaction(sql)(recordIn(sql, "debt-a", ["search"], 1)))
      expect(yield* maintainJobs("debt-a")).toBe(1)
      // More debt while that job waits: the queue keeps the one.
      yield* inJob(transaction(sql)(recordIn(sql, "debt-a", ["links"], 1)))
      expect(yield* maintainJobs("debt-a")).toBe(1)

      // Outside a fleet job, recording debt queues nothing.
      yield* sql`INSERT INTO tidemark.sources (id, kind, root) VALUES ('debt-b', 'dir', '/b')`
      expect(yield* FiberRef.get(debtRecorded)).toBe(null)
      yield* transaction(sql)(recordIn(sql, "debt-b", ["search"], 1))
      expect(yield* maintainJobs("debt-b")).toBe(0)
    })
  )
})
