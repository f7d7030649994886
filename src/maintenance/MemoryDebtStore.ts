/** Maintenance debt in memory, timed by `Clock`, for simulations under `TestClock`; behaves like the PostgreSQL store. */
import { Clock, Duration, Effect, Layer, Ref } from "effect"
import { type DebtRow, isDue, type Kind } from "./Debt.js"
import { DebtStore } from "./DebtStore.js"

const keyOf = (sourceId: string, kind: Kind) => `${sourceId}\u0000${kind}`

export const layer: Layer.Layer<DebtStore> = Layer.effect(
  DebtStore,
  Effect.map(Ref.make(new Map<string, DebtRow>()), (rows) => {
    const update = (sourceId: string, kind: Kind, f: (row: DebtRow, now: number) => DebtRow) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.modify(rows, (all) => {
          const row = all.get(keyOf(sourceId, kind))
          if (row === undefined) return [undefined, all]
          const next = f(row, now)
          return [next, new Map(all).set(keyOf(sourceId, kind), next)]
        })
      )
    const sorted = (all: Iterable<DebtRow>) =>
      [...all].sort((a, b) =>
        a.sourceId === b.sourceId ? (a.kind < b.kind ? -1 : 1) : a.sourceId < b.sourceId ? -1 : 1
      )
    return DebtStore.of({
      record: (sourceId, kinds, changed = 0) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Ref.update(rows, (all) => {
            const next = new Map(all)
            for (const kind of kinds) {
              const row = all.get(keyOf(sourceId, kind))
              next.set(
                keyOf(sourceId, kind),
                row === undefined
                  ? {
                      sourceId,
                      kind,
                      revision: 1,
                      paidRevision: 0,
                      pendingSince: now,
                      attempts: 0,
                      nextAttemptAt: now,
                      lastError: null,
                      payer: null,
                      payingSince: null,
                      runs: 0,
                      reruns: 0,
                      changed
                    }
                  : {
                      ...row,
                      revision: row.revision + 1,
                      changed: row.changed + changed,
                      pendingSince: row.pendingSince ?? now,
                      nextAttemptAt: row.pendingSince === null ? now : row.nextAttemptAt
                    }
              )
            }
            return next
          })
        ),
      list: (sourceId) =>
        Effect.map(Ref.get(rows), (all) =>
          sorted([...all.values()].filter((r) => sourceId === undefined || r.sourceId === sourceId))
        ),
      due: (sourceId) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.map(Ref.get(rows), (all) =>
            sorted(
              [...all.values()].filter((r) => (sourceId === undefined || r.sourceId === sourceId) && isDue(r, now))
            )
          )
        ),
      begin: (sourceId, kind, payer, rerun) =>
        Effect.map(
          update(sourceId, kind, (row, now) => ({
            ...row,
            payer,
            payingSince: now,
            runs: row.runs + (rerun ? 0 : 1),
            reruns: row.reruns + (rerun ? 1 : 0)
          })),
          (row) => row?.revision ?? 0
        ),
      paid: (sourceId, kind, revision) =>
        Effect.map(
          update(sourceId, kind, (row, now) => ({
            ...row,
            paidRevision: revision,
            payer: null,
            payingSince: null,
            attempts: 0,
            lastError: null,
            pendingSince: row.revision === revision ? null : row.pendingSince,
            nextAttemptAt: now
          })),
          (row) => (row === undefined || row.revision === revision ? ("paid" as const) : ("moved" as const))
        ),
      failed: (sourceId, kind, error, retryAfter) =>
        Effect.asVoid(
          update(sourceId, kind, (row, now) => ({
            ...row,
            attempts: row.attempts + 1,
            lastError: error,
            payer: null,
            payingSince: null,
            nextAttemptAt: now + Duration.toMillis(retryAfter)
          }))
        ),
      // In memory there are no other processes: nobody else can be paying.
      unattended: (quiet) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.map(Ref.get(rows), (all) => [
            ...new Set(
              sorted(all.values())
                .filter(
                  (r) => isDue(r, now) && (r.payingSince === null || r.payingSince < now - Duration.toMillis(quiet))
                )
                .map((r) => r.sourceId)
            )
          ])
        ),
      schedule: (sourceIds, scheduledBy) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Ref.update(rows, (all) => {
            const next = new Map(all)
            for (const row of all.values()) {
              if (sourceIds.includes(row.sourceId) && row.pendingSince !== null) {
                next.set(keyOf(row.sourceId, row.kind), { ...row, payer: scheduledBy, payingSince: now })
              }
            }
            return next
          })
        )
    })
  })
)
