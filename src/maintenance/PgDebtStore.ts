/**
 * Maintenance debt in `tidemark.maintenance_debt`, on the main pool. Recording
 * is also a statement for other transactions (`recordIn`): a sink bumps its
 * source's debt in the same transaction as the change, so no crash can lose it.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, FiberRef, Layer } from "effect"
import { MainDb } from "../db/Database.js"
import { wrapSql } from "../db/StoreError.js"
import { textArray } from "../db/TextArray.js"
import type { DebtRow, Kind } from "./Debt.js"
import { DebtStore } from "./DebtStore.js"

const store = "maintenance debt store"

/**
 * The statement that records debt: a new row owes from now; an owed row only
 * moves its revision (a kind backed off after a failure stays backed off).
 * `changed` rows are added to the kinds' count of changed rows.
 */
export const recordIn = (sql: SqlClient, sourceId: string, kinds: ReadonlyArray<Kind>, changed = 0) =>
  Effect.zipRight(
    record(sql, sourceId, kinds, changed),
    Effect.flatMap(FiberRef.get(debtRecorded), (also) => (also === null ? Effect.void : also(sql, sourceId)))
  )

/**
 * What else the transaction that records a source's debt does, in that same
 * transaction (null: nothing). A fleet worker queues the source's `maintain`
 * job here, so that debt and job commit together: no crash leaves debt that
 * no job will pay.
 */
export const debtRecorded = FiberRef.unsafeMake<
  ((sql: SqlClient, sourceId: string) => Effect.Effect<void, SqlError>) | null
>(null)

const record = (sql: SqlClient, sourceId: string, kinds: ReadonlyArray<Kind>, changed: number) => sql`
  INSERT INTO tidemark.maintenance_debt AS d (source_id, kind, pending_since, next_attempt_at, changed)
  SELECT ${sourceId}, k, now(), now(), ${changed} FROM unnest(${textArray(kinds)}::text[]) AS k
  ON CONFLICT (source_id, kind) DO UPDATE SET
    revision = d.revision + 1,
    changed = d.changed + excluded.changed,
    pending_since = coalesce(d.pending_since, now()),
    next_attempt_at = CASE WHEN d.pending_since IS NULL THEN now() ELSE d.next_attempt_at END,
    updated_at = now()`

interface Row {
  readonly source_id: string
  readonly kind: Kind
  readonly revision: string
  readonly paid_revision: string
  readonly pending_since: Date | null
  readonly attempts: number
  readonly next_attempt_at: Date
  readonly last_error: string | null
  readonly payer: string | null
  readonly paying_since: Date | null
  readonly runs: string
  readonly reruns: string
  readonly changed: string
}

const toRow = (r: Row): DebtRow => ({
  sourceId: r.source_id,
  kind: r.kind,
  revision: Number(r.revision),
  paidRevision: Number(r.paid_revision),
  pendingSince: r.pending_since?.getTime() ?? null,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at.getTime(),
  lastError: r.last_error,
  payer: r.payer,
  payingSince: r.paying_since?.getTime() ?? null,
  runs: Number(r.runs),
  reruns: Number(r.reruns),
  changed: Number(r.changed)
})

export const layer = Layer.effect(
  DebtStore,
  Effect.map(MainDb, ({ sql }) =>
    DebtStore.of({
      record: (sourceId, kinds, changed) =>
        recordIn(sql, sourceId, kinds, changed).pipe(Effect.asVoid, wrapSql(store, "record debt")),
      list: (sourceId) =>
        (sourceId === undefined
          ? sql<Row>`SELECT * FROM tidemark.maintenance_debt ORDER BY source_id, kind`
          : sql<Row>`SELECT * FROM tidemark.maintenance_debt WHERE source_id = ${sourceId} ORDER BY kind`
        ).pipe(
          Effect.map((rows) => rows.map(toRow)),
          wrapSql(store, "list debt")
        ),
      due: (sourceId) =>
        (sourceId === undefined
          ? sql<Row>`
              SELECT * FROM tidemark.maintenance_debt
               WHERE pending_since IS NOT NULL AND next_attempt_at <= now() ORDER BY source_id, kind`
          : sql<Row>`
              SELECT * FROM tidemark.maintenance_debt
               WHERE source_id = ${sourceId} AND pending_since IS NOT NULL AND next_attempt_at <= now() ORDER BY kind`
        ).pipe(
          Effect.map((rows) => rows.map(toRow)),
          wrapSql(store, "list due debt")
        ),
      begin: (sourceId, kind, payer, rerun) =>
        sql<{ revision: string }>`
          UPDATE tidemark.maintenance_debt
             SET payer = ${payer}, paying_since = now(), runs = runs + ${rerun ? 0 : 1},
                 reruns = reruns + ${rerun ? 1 : 0}, updated_at = now()
           WHERE source_id = ${sourceId} AND kind = ${kind}
          RETURNING revision`.pipe(
          Effect.map((rows) => Number(rows[0]?.revision ?? 0)),
          wrapSql(store, "begin paying")
        ),
      paid: (sourceId, kind, revision) =>
        sql<{ revision: string }>`
          UPDATE tidemark.maintenance_debt
             SET paid_revision = ${revision}, payer = NULL, paying_since = NULL, attempts = 0, last_error = NULL,
                 pending_since = CASE WHEN revision = ${revision} THEN NULL ELSE pending_since END,
                 next_attempt_at = now(), updated_at = now()
           WHERE source_id = ${sourceId} AND kind = ${kind}
          RETURNING revision`.pipe(
          Effect.map((rows) =>
            Number(rows[0]?.revision ?? revision) === revision ? ("paid" as const) : ("moved" as const)
          ),
          wrapSql(store, "mark paid")
        ),
      failed: (sourceId, kind, error, retryAfter) =>
        sql`
          UPDATE tidemark.maintenance_debt
             SET attempts = attempts + 1, last_error = ${error}, payer = NULL, paying_since = NULL,
                 next_attempt_at = now() + ${Duration.toMillis(retryAfter)} * interval '1 millisecond', updated_at = now()
           WHERE source_id = ${sourceId} AND kind = ${kind}`.pipe(Effect.asVoid, wrapSql(store, "record a failure")),
      unattended: (quiet) =>
        sql<{ source_id: string }>`
          SELECT DISTINCT d.source_id FROM tidemark.maintenance_debt d
           WHERE d.pending_since IS NOT NULL AND d.next_attempt_at <= now()
             AND (d.paying_since IS NULL OR d.paying_since < now() - ${Duration.toMillis(quiet)} * interval '1 millisecond')
             AND NOT EXISTS (SELECT 1 FROM tidemark.locks l
                              WHERE l.name = 'maintain:' || d.source_id AND l.expires_at > now())
           ORDER BY d.source_id`.pipe(
          Effect.map((rows) => rows.map((r) => r.source_id)),
          wrapSql(store, "find unattended debt")
        ),
      schedule: (sourceIds, scheduledBy) =>
        sourceIds.length === 0
          ? Effect.void
          : sql`
              UPDATE tidemark.maintenance_debt SET payer = ${scheduledBy}, paying_since = now(), updated_at = now()
               WHERE source_id = ANY(${textArray(sourceIds)}::text[]) AND pending_since IS NOT NULL`.pipe(
              Effect.asVoid,
              wrapSql(store, "schedule a payer")
            )
    })
  )
)
