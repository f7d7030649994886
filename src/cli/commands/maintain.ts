/**
 * `tidemark maintain [--source S]`: pays the maintenance debt due now — of one
 * source, or of every source that owes some — and says what it did. A source
 * another payer is paying is skipped.
 */
import { Command, Options } from "@effect/cli"
import { Console, Data, Effect, Layer } from "effect"
import * as LeaseLock from "../../lock/LeaseLock.js"
import * as PgLeaseStore from "../../lock/PgLeaseStore.js"
import { kinds } from "../../maintenance/Debt.js"
import * as Payer from "../../maintenance/Payer.js"
import * as PgDebtStore from "../../maintenance/PgDebtStore.js"
import * as PgRunners from "../../maintenance/PgRunners.js"
import { dbOptions, withDatabase } from "../DbOptions.js"
import { awaitStarterExit } from "../maintenance/Background.js"

/** What a payer needs on PostgreSQL. */
export const payerLayer = Layer.mergeAll(LeaseLock.layer, PgDebtStore.layer, PgRunners.layer).pipe(
  Layer.provideMerge(PgLeaseStore.layer)
)

const unit = {
  search: "documents indexed",
  links: "documents linked",
  analyze: "tables analyzed",
  purge: "rows purged"
}

export const describeReports = (reports: ReadonlyArray<Payer.SourceReport>) =>
  reports.length === 0
    ? ["no maintenance due"]
    : reports.map((r) =>
        r.skipped
          ? `${r.sourceId}: skipped, another payer is paying it`
          : `${r.sourceId}: ${
              r.kinds.length === 0
                ? "nothing due"
                : r.kinds
                    .map((k) =>
                      k.outcome === "failed"
                        ? `${k.kind} failed (${k.error}; tried again later)`
                        : `${k.kind} ${k.done} ${unit[k.kind]}${k.reruns > 0 ? ", once more for changes meanwhile" : ""}${k.outcome === "owed" ? " (more changed since: left for the next payer)" : ""}`
                    )
                    .join("; ")
            }`
      )

/** Some kind failed: it backs off and is tried again, and the command says so (exit 1). */
export class MaintenanceFailed extends Data.TaggedError("MaintenanceFailed")<{
  readonly failed: ReadonlyArray<{ readonly sourceId: string; readonly kind: string }>
}> {
  override get message() {
    return `maintenance failed for ${this.failed.map((k) => `${k.sourceId} (${k.kind})`).join(", ")}`
  }
  get hint() {
    return "it is tried again after a backoff (5 min, doubling to 30); see `tidemark status`"
  }
}

export const maintainCommand = Command.make(
  "maintain",
  {
    ...dbOptions,
    source: Options.text("source").pipe(
      Options.withDescription("Only this source (default: every source that owes some)."),
      Options.optional
    ),
    kind: Options.choice("kind", kinds).pipe(
      Options.withDescription("Only this kind of maintenance (repeatable; default every kind due)."),
      Options.repeated
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print the reports as JSON."))
  },
  (flags) =>
    Effect.gen(function* () {
      const reports = yield* Payer.payDue(
        flags.source._tag === "Some" ? flags.source.value : undefined,
        flags.kind.length > 0 ? { kinds: flags.kind } : {}
      )
      yield* Console.log(flags.json ? JSON.stringify(reports) : describeReports(reports).join("\n"))
      const failed = reports.flatMap((r) => r.kinds).filter((k) => k.outcome === "failed")
      if (failed.length > 0) return yield* new MaintenanceFailed({ failed })
    }).pipe(
      Effect.provide(payerLayer),
      withDatabase(flags, { scheduleMaintenance: false }),
      // Before the database is opened: the command that started this one is exiting.
      (pay) => Effect.zipRight(awaitStarterExit, pay)
    )
).pipe(Command.withDescription("Pay the maintenance debt due now: search vectors, links, statistics, purging."))
