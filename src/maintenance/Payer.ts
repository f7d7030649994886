/**
 * Paying maintenance debt. A source is paid under its own lease
 * (`maintain:<source>`), a lane of its own: a sync and a payer of the same
 * source never wait for each other, and two payers never pay one source at
 * once (the second skips). Kind by kind, each independently: a run covers the
 * revision it saw when it began; if the revision moved during the run (a sync
 * changed the source meanwhile), it runs once more, and no more (what is left
 * is owed to the next payer). A failing kind backs off (5 min doubling to 30)
 * and the other kinds are still paid.
 */
import { Clock, Effect, Either, Metric } from "effect"
import { LeaseLock } from "../lock/LeaseLock.js"
import type { LeaseTimings } from "../lock/LeaseTimings.js"
import { backoffAfter, type DebtRow, type Kind, kinds as kindOrder } from "./Debt.js"
import { DebtStore } from "./DebtStore.js"
import { Runners } from "./Runners.js"
import * as Metrics from "../telemetry/Metrics.js"
import { tagOf } from "../telemetry/Spans.js"

export interface KindReport {
  readonly sourceId: string
  readonly kind: Kind
  readonly outcome: "paid" | "owed" | "failed"
  /** Items done (documents indexed or linked, ops purged...). */
  readonly done: number
  readonly reruns: number
  /** How long the kind took, its runs and the debt bookkeeping together. */
  readonly millis: number
  readonly error?: string
}

export interface SourceReport {
  readonly sourceId: string
  /** Another payer holds the source's lease. */
  readonly skipped: boolean
  readonly kinds: ReadonlyArray<KindReport>
}

export const leaseName = (sourceId: string) => `maintain:${sourceId}`

const messageOf = (error: unknown) =>
  typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)

/** Pays one kind of one source: one run, and at most one rerun if the revision moved. */
const payKind = (row: DebtRow, payer: string, onDone: (items: number) => Effect.Effect<void>) =>
  Effect.gen(function* () {
    const debt = yield* DebtStore
    const runners = yield* Runners
    const started = yield* Clock.currentTimeMillis
    const millis = Effect.map(Clock.currentTimeMillis, (now) => now - started)
    let done = 0
    let reruns = 0
    for (let rerun = false; ; rerun = true) {
      const revision = yield* debt.begin(row.sourceId, row.kind, payer, rerun)
      const result = yield* Effect.either(
        runners.run(row.sourceId, row.kind, (n) =>
          Effect.zipRight(
            Effect.sync(() => (done += n)),
            onDone(n)
          )
        )
      )
      if (Either.isLeft(result)) {
        const error = messageOf(result.left)
        yield* Effect.annotateCurrentSpan("error.type", tagOf(result.left))
        const retryAfter = backoffAfter(row.attempts + 1)
        yield* debt.failed(row.sourceId, row.kind, error, retryAfter)
        yield* Effect.logWarning(`maintenance of ${row.sourceId} (${row.kind}) failed, retried later: ${error}`)
        return {
          sourceId: row.sourceId,
          kind: row.kind,
          outcome: "failed",
          done,
          reruns,
          millis: yield* millis,
          error
        } satisfies KindReport
      }
      if ((yield* debt.paid(row.sourceId, row.kind, revision)) === "paid") {
        return {
          sourceId: row.sourceId,
          kind: row.kind,
          outcome: "paid",
          done,
          reruns,
          millis: yield* millis
        } satisfies KindReport
      }
      if (rerun) {
        return {
          sourceId: row.sourceId,
          kind: row.kind,
          outcome: "owed",
          done,
          reruns,
          millis: yield* millis
        } satisfies KindReport
      }
      reruns++
    }
  }).pipe(
    Effect.tap((report) =>
      Effect.zipRight(
        Effect.annotateCurrentSpan({ "tidemark.outcome": report.outcome, "tidemark.items": report.done }),
        Metric.increment(
          Metric.tagged(Metric.tagged(Metrics.maintenanceRuns, "kind", row.kind), "outcome", report.outcome)
        )
      )
    ),
    Effect.withSpan(`tidemark.maintenance.${row.kind}`, {
      attributes: { "tidemark.source": row.sourceId, "tidemark.kind": row.kind }
    })
  )

export interface PayOptions {
  /** Only these kinds (default: every kind due). */
  readonly kinds?: ReadonlyArray<Kind>
  readonly leaseTimings?: LeaseTimings
  /** Told of each batch done, for progress. */
  readonly onDone?: (sourceId: string, kind: Kind, items: number) => Effect.Effect<void>
}

/** Pays the debt of `sourceId` that is due now (all of it, when `kinds` is not given). */
export const paySource = Effect.fn("Payer.paySource")(function* (sourceId: string, options: PayOptions = {}) {
  const lock = yield* LeaseLock
  const debt = yield* DebtStore
  return yield* lock
    .withLease(
      leaseName(sourceId),
      (lease) =>
        Effect.gen(function* () {
          const due = (yield* debt.due(sourceId)).filter((row) => options.kinds?.includes(row.kind) ?? true)
          const ordered = [...due].sort((a, b) => kindOrder.indexOf(a.kind) - kindOrder.indexOf(b.kind))
          const reports: Array<KindReport> = []
          for (const row of ordered) {
            reports.push(
              yield* payKind(row, lease.holder, (n) => options.onDone?.(sourceId, row.kind, n) ?? Effect.void)
            )
          }
          return { sourceId, skipped: false, kinds: reports } satisfies SourceReport
        }),
      options.leaseTimings === undefined ? {} : { timings: options.leaseTimings }
    )
    .pipe(
      Effect.catchTag("LockBusy", () => Effect.succeed({ sourceId, skipped: true, kinds: [] } satisfies SourceReport))
    )
})

/** Pays everything due now: of one source, or of every source that owes some. */
export const payDue = Effect.fn("Payer.payDue")(function* (sourceId?: string, options: PayOptions = {}) {
  const debt = yield* DebtStore
  const wanted = (row: DebtRow) => options.kinds?.includes(row.kind) ?? true
  const sources =
    sourceId !== undefined ? [sourceId] : [...new Set((yield* debt.due()).filter(wanted).map((row) => row.sourceId))]
  const reports: Array<SourceReport> = []
  for (const source of sources) reports.push(yield* paySource(source, options))
  return reports
})
