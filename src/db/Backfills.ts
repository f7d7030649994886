/**
 * Versioned backfills: data repairs registered as a named step with an integer
 * algorithm version. At startup, after migrations, every step whose exact
 * version has not completed runs in one transaction together with its
 * completion marker in `tidemark.backfill_state`: the repair and the marker
 * commit or roll back together. A completed version is skipped; a higher
 * version runs again. Completion is never inferred from the schema's shape.
 *
 * A marker means "history repaired": the code that writes new rows must
 * already write them correctly, so a failed backfill only leaves old rows as
 * they were. It is logged and retried at the next start, and never stops the
 * program (a repair that fails at every start must not become a crash loop).
 *
 * Steps are registered through Layers (`register`), so an embedding program
 * adds its own next to tidemark's.
 */
import { Cause, Effect, Exit, Layer, Ref } from "effect"
import { MainDb, transaction } from "./Database.js"

export interface BackfillStep {
  readonly name: string
  /** The algorithm's version: bump it when the repair changes, and it runs once more. */
  readonly version: number
  /** The repair. Its MainDb queries run in the transaction that records its completion. */
  readonly run: Effect.Effect<void, unknown, MainDb>
}

export type BackfillOutcome =
  | { readonly _tag: "AlreadyDone"; readonly step: string; readonly version: number }
  | { readonly _tag: "Completed"; readonly step: string; readonly version: number; readonly millis: number }
  | { readonly _tag: "Failed"; readonly step: string; readonly version: number; readonly reason: string }

export class Backfills extends Effect.Service<Backfills>()("tidemark/Backfills", {
  effect: Effect.map(Ref.make<ReadonlyArray<BackfillStep>>([]), (registered) => ({
    register: (steps: ReadonlyArray<BackfillStep>) => Ref.update(registered, (all) => [...all, ...steps]),
    steps: Ref.get(registered)
  }))
}) {}

/** A Layer that adds steps to the registry (in order, after those registered before). */
export const register = (...steps: ReadonlyArray<BackfillStep>) =>
  Layer.effectDiscard(Effect.flatMap(Backfills, (backfills) => backfills.register(steps)))

const describe = (step: BackfillStep) => `backfill ${step.name} v${step.version}`

/** What went wrong, in one line: the database's own message when there is one. */
const reasonOf = (cause: Cause.Cause<unknown>) => {
  const error = Cause.squash(cause) as { readonly message?: unknown; readonly cause?: { readonly message?: unknown } }
  const inner = error?.cause?.message
  return typeof inner === "string" ? inner : typeof error?.message === "string" ? error.message : String(error)
}

/** Runs one step unless another process completed it while this one waited for the step's lock. */
const runOne = (step: BackfillStep) =>
  Effect.flatMap(MainDb, ({ sql }) =>
    transaction(sql)(
      Effect.gen(function* () {
        // Two processes starting at once: one repairs, the other waits here, then sees the marker.
        yield* sql`SELECT pg_advisory_xact_lock(hashtextextended(${`tidemark:backfill:${step.name}`}, 0))`
        const [done] = yield* sql`
          SELECT 1 FROM tidemark.backfill_state WHERE step = ${step.name} AND version = ${step.version}`
        if (done !== undefined) return false
        yield* step.run
        yield* sql`INSERT INTO tidemark.backfill_state (step, version) VALUES (${step.name}, ${step.version})`
        return true
      })
    )
  )

/**
 * Runs every registered step whose version has not completed, in registration
 * order. When all are complete this is one query.
 */
export const runPending = Effect.fn("Backfills.runPending")(function* () {
  const steps = yield* Effect.flatMap(Backfills, (backfills) => backfills.steps)
  if (steps.length === 0) return []
  const { sql } = yield* MainDb
  const completed = new Set(
    (yield* sql<{ step: string; version: number }>`SELECT step, version FROM tidemark.backfill_state`).map(
      (row) => `${row.step}\u0000${row.version}`
    )
  )
  const outcomes: Array<BackfillOutcome> = []
  for (const step of steps) {
    const { name, version } = step
    if (completed.has(`${name}\u0000${version}`)) {
      yield* Effect.logDebug(`${describe(step)}: already done`)
      outcomes.push({ _tag: "AlreadyDone", step: name, version })
      continue
    }
    const started = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    const exit = yield* Effect.exit(runOne(step))
    if (Exit.isSuccess(exit)) {
      const millis = (yield* Effect.clockWith((clock) => clock.currentTimeMillis)) - started
      if (exit.value) yield* Effect.logInfo(`${describe(step)}: done in ${millis} ms`)
      outcomes.push(
        exit.value ? { _tag: "Completed", step: name, version, millis } : { _tag: "AlreadyDone", step: name, version }
      )
    } else {
      if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.failCause(exit.cause)
      const reason = reasonOf(exit.cause)
      yield* Effect.logWarning(
        `${describe(step)} failed; nothing of it was kept, the next start tries again: ${reason}`
      )
      outcomes.push({ _tag: "Failed", step: name, version, reason })
    }
  }
  return outcomes
})
