/**
 * What `tidemark status` reports of each source, read in one query per source
 * plus one for all: the counts of documents and entries are the ones kept on
 * `tidemark.sources` by the writes (exact), so nothing here grows with the
 * size of a source but its item errors (counted) and JSONL files (listed).
 */
import * as fs from "node:fs"
import { Effect, Option } from "effect"
import { MainDb } from "../db/Database.js"
import { UnknownSource } from "../ops/OpsStore.js"
import * as GitSource from "../source/git/GitSource.js"
import * as RunState from "../state/RunState.js"
import type { SourceStatus } from "./StatusSchema.js"

export type { SourceStatus } from "./StatusSchema.js"

/** What of a stored run state decodes (a corrupt group shows as unknown, never as an error). */
const runOf = (row: {
  readonly run_identity: unknown
  readonly run_counts: unknown
  readonly run_rate: unknown
  readonly run_saved_age: number | null
}): SourceStatus["run"] => {
  if (row.run_saved_age === null) return null
  const { identity, counts, rate } = RunState.decodeStored({
    identity: row.run_identity,
    counts: row.run_counts,
    rate: row.run_rate
  })
  const c = Option.getOrNull(counts)
  const r = Option.getOrNull(rate)
  return {
    opId: Option.getOrNull(identity)?.opId ?? null,
    phase: Option.getOrNull(identity)?.phase ?? null,
    planned: c?.planned ?? null,
    done: c?.done ?? null,
    failed: c?.failed ?? null,
    bytes: c?.bytes ?? null,
    restarts: c?.restarts ?? null,
    itemsPerSecond: r?.itemsPerSecond ?? null,
    etaSeconds: c !== null && r !== null ? RunState.etaSeconds(c, r) : null,
    savedAgeSeconds: row.run_saved_age
  }
}

/** Every source's status, or only `only`'s (`UnknownSource` if there is none). */
export const statuses = Effect.fn("status.statuses")(function* (only?: string) {
  const { sql } = yield* MainDb
  const rows = yield* sql<{
    id: string
    kind: string
    root: string
    watermark: unknown
    sink: string
    documents: string | null
    entries: string
    last_sync: Date | null
    op_id: string | null
    banked: string | null
    planned: string | null
    restarts: number | null
    op_started: Date | null
    op_base: unknown
    op_target: unknown
    item_errors: string
    lock_pid: number | null
    lock_host: string | null
    heartbeat_age: number | null
    run_identity: unknown
    run_counts: unknown
    run_rate: unknown
    run_saved_age: number | null
  }>`
    SELECT s.id, s.kind, s.root, s.watermark, s.sink,
           CASE WHEN s.sink = 'documents' THEN s.documents END AS documents, s.entries,
           (SELECT max(completed_at) FROM tidemark.ops d WHERE d.source_id = s.id AND d.status = 'done') AS last_sync,
           o.id AS op_id, o.banked, o.planned, o.restarts, o.created_at AS op_started,
           o.base AS op_base, o.target AS op_target,
           (SELECT count(*) FROM tidemark.item_errors e WHERE e.source_id = s.id) AS item_errors,
           l.pid AS lock_pid, l.host AS lock_host,
           extract(epoch FROM now() - l.heartbeat_at)::float8 AS heartbeat_age,
           r.identity AS run_identity, r.counts AS run_counts, r.rate AS run_rate,
           extract(epoch FROM now() - r.flushed_at)::float8 AS run_saved_age
      FROM tidemark.sources s
      LEFT JOIN tidemark.run_state r ON r.source_id = s.id
      LEFT JOIN tidemark.ops o ON o.source_id = s.id AND o.status = 'open'
      LEFT JOIN tidemark.locks l ON l.name = 'sync:' || s.id AND l.expires_at > now()
     WHERE ${only ?? null}::text IS NULL OR s.id = ${only ?? null}
     ORDER BY s.id`
  if (only !== undefined && rows.length === 0) return yield* new UnknownSource({ sourceId: only })
  const jsonlOf = (sourceId: string, entries: number) =>
    Effect.gen(function* () {
      const files = yield* sql<{ path: string; gone: boolean; backlog: string; pending_tail: boolean }>`
        SELECT path, gone, backlog, pending_tail FROM tidemark.jsonl_files WHERE source_id = ${sourceId} ORDER BY path`
      return {
        files: files.filter((f) => !f.gone).length,
        gone: files.filter((f) => f.gone).length,
        entries,
        backlog: files.filter((f) => Number(f.backlog) > 0).map((f) => ({ path: f.path, entries: Number(f.backlog) })),
        pendingTails: files.filter((f) => f.pending_tail && !f.gone).map((f) => f.path)
      }
    })
  return yield* Effect.forEach(rows, (row) =>
    Effect.zipWith(
      Effect.all([
        sql<{ key: string; error: string; attempts: number }>`
          SELECT key, error, attempts FROM tidemark.item_errors WHERE source_id = ${row.id} ORDER BY last_at DESC, key LIMIT 10`,
        row.kind === "jsonl" ? jsonlOf(row.id, Number(row.entries)) : Effect.succeed(null),
        sql<{
          kind: string
          pending_since: Date
          attempts: number
          last_error: string | null
          next_in: number
          payer: string | null
        }>`
          SELECT kind, pending_since, attempts, last_error, payer,
                 greatest(0, extract(epoch FROM next_attempt_at - now()))::float8 AS next_in
            FROM tidemark.maintenance_debt WHERE source_id = ${row.id} AND pending_since IS NOT NULL ORDER BY kind`
      ]),
      row.kind === "git" && fs.existsSync(row.root)
        ? GitSource.hasUncommittedChanges(row.root).pipe(Effect.orElseSucceed(() => null))
        : Effect.succeed(null),
      ([recentErrors, jsonl, debt], uncommitted): SourceStatus => ({
        id: row.id,
        kind: row.kind,
        root: row.root,
        watermark: row.watermark,
        sink: row.sink,
        documents: row.documents === null ? null : Number(row.documents),
        lastSync: row.last_sync?.toISOString() ?? null,
        openOp:
          row.op_id === null
            ? null
            : {
                id: Number(row.op_id),
                banked: Number(row.banked),
                planned: row.planned === null ? null : Number(row.planned),
                restarts: row.restarts ?? 0,
                startedAt: row.op_started!.toISOString(),
                base: row.op_base,
                target: row.op_target
              },
        uncommitted,
        jsonl,
        maintenance: debt.map((d) => ({
          kind: d.kind,
          pendingSince: d.pending_since.toISOString(),
          attempts: d.attempts,
          lastError: d.last_error,
          nextAttemptInSeconds: d.next_in,
          payer: d.payer
        })),
        run: runOf(row),
        itemErrors: Number(row.item_errors),
        recentErrors,
        lock:
          row.lock_pid === null
            ? null
            : { pid: row.lock_pid, host: row.lock_host!, heartbeatAgeSeconds: row.heartbeat_age! }
      })
    )
  )
})
