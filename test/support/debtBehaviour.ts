/**
 * The payer's rules, written once and run on both stores: in memory under
 * TestClock, and on PostgreSQL (the debt and lease rows are moved into the
 * past to advance its clock). The work of each kind is a scripted runner, so a
 * test decides what a run does: fail, take a while, or record new debt.
 */
import { expect, type Vitest } from "@effect/vitest"
import { Context, Deferred, Duration, Effect, Fiber, Layer, type Scope } from "effect"
import type { Kind } from "../../src/maintenance/Debt.js"
import { DebtStore } from "../../src/maintenance/DebtStore.js"
import * as Payer from "../../src/maintenance/Payer.js"
import { Runners } from "../../src/maintenance/Runners.js"
import type { LeaseLock } from "../../src/lock/LeaseLock.js"

/** Moves the store's time forward by `by` (TestClock in memory; rows into the past on PostgreSQL). */
export class Advance extends Context.Tag("test/DebtAdvance")<
  Advance,
  (by: Duration.DurationInput) => Effect.Effect<void>
>() {}

export type Script = (sourceId: string, kind: Kind, run: number) => Effect.Effect<number, unknown, DebtStore>

export type Provide<R> = <A, E>(
  self: Effect.Effect<A, E, DebtStore | LeaseLock | Runners | Advance | Scope.Scope>,
  script: Script
) => Effect.Effect<A, E, R>

let counter = 0
const unique = (label: string) => `debt:${label}:${++counter}:${Math.random().toString(36).slice(2, 8)}`

/** Runners that follow `script`, counting runs per (source, kind). */
export const scripted = (script: Script) =>
  Layer.effect(
    Runners,
    Effect.map(DebtStore, (debt) => {
      const runs = new Map<string, number>()
      return Runners.of({
        run: (sourceId, kind, done) => {
          const n = (runs.get(`${sourceId}/${kind}`) ?? 0) + 1
          runs.set(`${sourceId}/${kind}`, n)
          return script(sourceId, kind, n).pipe(
            Effect.provideService(DebtStore, debt),
            Effect.tap((items) => done(items)),
            Effect.mapError((cause) => new Error(`scripted failure: ${String(cause)}`) as never)
          )
        }
      })
    })
  )

const row = (sourceId: string, kind: Kind) =>
  Effect.flatMap(DebtStore, (debt) => Effect.map(debt.list(sourceId), (rows) => rows.find((r) => r.kind === kind)!))

export const debtBehaviour = <R>(it: Vitest.MethodsNonLive<R, boolean>, provide: Provide<R>) => {
  it.effect("pays every kind due, and a second pass finds nothing to do", () =>
    provide(
      Effect.gen(function* () {
        const debt = yield* DebtStore
        const source = unique("all")
        yield* debt.record(source, ["search", "links", "analyze", "purge"])
        const [report] = yield* Payer.payDue(source)
        expect(report!.kinds.map((k) => [k.kind, k.outcome])).toEqual([
          ["search", "paid"],
          ["links", "paid"],
          ["analyze", "paid"],
          ["purge", "paid"]
        ])
        expect((yield* debt.list(source)).every((r) => r.pendingSince === null && r.paidRevision === r.revision)).toBe(
          true
        )
        expect(yield* Payer.payDue(source)).toEqual([{ sourceId: source, skipped: false, kinds: [] }])
      }),
      () => Effect.succeed(1)
    )
  )

  it.effect("counts the rows each change changed, per kind, across changes", () =>
    provide(
      Effect.gen(function* () {
        const debt = yield* DebtStore
        const source = unique("counted")
        yield* debt.record(source, ["search", "analyze"], 600)
        yield* debt.record(source, ["analyze"], 500)
        yield* debt.record(source, ["purge"])
        expect((yield* debt.list(source)).map((r) => [r.kind, r.changed])).toEqual([
          ["analyze", 1100],
          ["purge", 0],
          ["search", 600]
        ])
      }),
      () => Effect.succeed(1)
    )
  )

  it.effect("debt recorded during a run gets exactly one rerun; more during the rerun stays owed", () =>
    provide(
      Effect.gen(function* () {
        const debt = yield* DebtStore
        const source = unique("rerun")
        yield* debt.record(source, ["search"])
        const [report] = yield* Payer.payDue(source)
        expect(report!.kinds).toMatchObject([
          { sourceId: source, kind: "search", outcome: "owed", done: 20, reruns: 1 }
        ])
        const owed = yield* row(source, "search")
        expect(owed).toMatchObject({ runs: 1, reruns: 1, revision: 3, paidRevision: 2 })
        expect(owed.pendingSince).not.toBeNull()
        // The next payer pays what was left.
        const [next] = yield* Payer.payDue(source)
        expect(next!.kinds[0]).toMatchObject({ outcome: "paid", reruns: 0 })
      }),
      // Each of the first two runs sees the source change while it runs.
      (sourceId, kind, run) =>
        run <= 2
          ? Effect.as(
              Effect.flatMap(DebtStore, (debt) => debt.record(sourceId, [kind])),
              10
            )
          : Effect.succeed(1)
    )
  )

  it.effect("a failing kind backs off 5, 10, 20, then 30 minutes, while the other kinds are paid", () =>
    provide(
      Effect.gen(function* () {
        const debt = yield* DebtStore
        const advance = yield* Advance
        const source = unique("backoff")
        yield* debt.record(source, ["search", "links"])
        const first = yield* Payer.payDue(source)
        expect(first[0]!.kinds.map((k) => [k.kind, k.outcome])).toEqual([
          ["search", "failed"],
          ["links", "paid"]
        ])
        expect((yield* row(source, "search")).lastError).toContain("the search index is broken")
        for (const [minutes, attempts] of [
          [5, 2],
          [10, 3],
          [20, 4],
          [30, 5],
          [30, 6]
        ] as const) {
          // Not due a minute before its time, due at it.
          yield* advance(Duration.minutes(minutes - 1))
          expect(yield* debt.due(source)).toEqual([])
          yield* advance(Duration.minutes(1))
          expect((yield* debt.due(source)).map((r) => r.kind)).toEqual(["search"])
          const [report] = yield* Payer.payDue(source)
          expect(report!.kinds).toMatchObject([{ kind: "search", outcome: "failed" }])
          expect((yield* row(source, "search")).attempts).toBe(attempts)
        }
        // New debt for the links meanwhile is paid at once, whatever the search kind does.
        yield* debt.record(source, ["links"])
        const [links] = yield* Payer.payDue(source)
        expect(links!.kinds).toMatchObject([{ kind: "links", outcome: "paid" }])
      }),
      (_, kind) => (kind === "search" ? Effect.fail("the search index is broken") : Effect.succeed(3))
    )
  )

  it.effect("a second payer of the same source skips while the first pays", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      yield* provide(
        Effect.gen(function* () {
          const debt = yield* DebtStore
          const source = unique("two")
          yield* debt.record(source, ["search"])
          const first = yield* Effect.fork(Payer.paySource(source))
          yield* Deferred.await(started)
          // The first payer is in the middle of its run: the second finds the lease held.
          expect(yield* Payer.paySource(source)).toEqual({ sourceId: source, skipped: true, kinds: [] })
          yield* Deferred.succeed(release, undefined)
          expect((yield* Fiber.join(first)).kinds).toMatchObject([{ kind: "search", outcome: "paid" }])
          expect((yield* row(source, "search")).pendingSince).toBeNull()
        }),
        () => Effect.as(Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(release)), 1)
      )
    })
  )
}
