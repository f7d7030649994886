import { Command, Options } from "@effect/cli"
import * as fs from "node:fs"
import { Console, Effect, Option } from "effect"
import { MainDb } from "../../db/Database.js"
import * as GitSource from "../../source/git/GitSource.js"
import * as RunState from "../../state/RunState.js"
import { dbOptions, withDatabase } from "../DbOptions.js"

interface SourceStatus {
  readonly id: string
  readonly kind: string
  readonly root: string
  readonly watermark: unknown
  /** The sink its items go to ("documents", or one of an embedding program). */
  readonly sink: string
  /** Documents stored, for a source of the documents sink; null for any other sink (it counts its own). */
  readonly documents: number | null
  readonly lastSync: string | null
  readonly openOp: {
    readonly id: number
    readonly banked: number
    readonly planned: number | null
    readonly restarts: number
    readonly startedAt: string
    /** Where the op started from and where it goes (git: commits). */
    readonly base: unknown
    readonly target: unknown
  } | null
  /** The last saved progress of the current or last sync (cumulative across restarts), if any was saved. */
  readonly run: {
    readonly opId: number | null
    readonly phase: string | null
    readonly planned: number | null
    readonly done: number | null
    readonly failed: number | null
    readonly bytes: number | null
    readonly restarts: number | null
    readonly itemsPerSecond: number | null
    readonly etaSeconds: number | null
    readonly savedAgeSeconds: number
  } | null
  /** Git: whether the work tree has uncommitted changes (they are not synced); null otherwise. */
  readonly uncommitted: boolean | null
  /** JSONL: its files and entries; null for other kinds. */
  readonly jsonl: {
    readonly files: number
    readonly gone: number
    /** Entries present in their files. */
    readonly entries: number
    /** Files with new entries left for later syncs by the flood cap, and how many. */
    readonly backlog: ReadonlyArray<{ readonly path: string; readonly entries: number }>
    /** Files whose last line is still being written. */
    readonly pendingTails: ReadonlyArray<string>
  } | null
  /** Maintenance owed: per kind, since when, failed attempts, who is paying it. */
  readonly maintenance: ReadonlyArray<{
    readonly kind: string
    readonly pendingSince: string
    readonly attempts: number
    readonly lastError: string | null
    readonly nextAttemptInSeconds: number
    readonly payer: string | null
  }>
  readonly itemErrors: number
  readonly recentErrors: ReadonlyArray<{ readonly key: string; readonly error: string; readonly attempts: number }>
  readonly lock: { readonly pid: number; readonly host: string; readonly heartbeatAgeSeconds: number } | null
}

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

const statuses = Effect.gen(function* () {
  const { sql } = yield* MainDb
  const rows = yield* sql<{
    id: string
    kind: string
    root: string
    watermark: unknown
    sink: string
    documents: string | null
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
           CASE WHEN s.sink = 'documents'
                THEN (SELECT count(*) FROM tidemark.documents d WHERE d.source_id = s.id) END AS documents,
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
     ORDER BY s.id`
  const jsonlOf = (sourceId: string) =>
    Effect.gen(function* () {
      const files = yield* sql<{ path: string; gone: boolean; backlog: string; pending_tail: boolean }>`
        SELECT path, gone, backlog, pending_tail FROM tidemark.jsonl_files WHERE source_id = ${sourceId} ORDER BY path`
      const [entries] = yield* sql<{ n: string }>`
        SELECT count(*) AS n FROM tidemark.entries WHERE source_id = ${sourceId} AND present`
      return {
        files: files.filter((f) => !f.gone).length,
        gone: files.filter((f) => f.gone).length,
        entries: Number(entries?.n ?? 0),
        backlog: files.filter((f) => Number(f.backlog) > 0).map((f) => ({ path: f.path, entries: Number(f.backlog) })),
        pendingTails: files.filter((f) => f.pending_tail && !f.gone).map((f) => f.path)
      }
    })
  return yield* Effect.forEach(rows, (row) =>
    Effect.zipWith(
      Effect.all([
        sql<{ key: string; error: string; attempts: number }>`
          SELECT key, error, attempts FROM tidemark.item_errors WHERE source_id = ${row.id} ORDER BY last_at DESC, key LIMIT 10`,
        row.kind === "jsonl" ? jsonlOf(row.id) : Effect.succeed(null),
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

const commitOf = (recorded: unknown): string | undefined => {
  const commit = (recorded as { commit?: unknown } | null)?.commit
  return typeof commit === "string" ? commit.slice(0, 12) : undefined
}

/** Git: the commits an open op goes between. */
const commitRange = (op: NonNullable<SourceStatus["openOp"]>) => {
  const to = commitOf(op.target)
  return to === undefined ? "" : `, commits ${commitOf(op.base) ?? "(first sync)"}..${to}`
}

const duration = (seconds: number) =>
  seconds < 90
    ? `${Math.round(seconds)}s`
    : seconds < 5400
      ? `${Math.round(seconds / 60)}m`
      : `${(seconds / 3600).toFixed(1)}h`

const runLine = (run: NonNullable<SourceStatus["run"]>) => {
  const known = (n: number | null) => (n === null ? "?" : String(n))
  const share =
    run.planned !== null && run.done !== null && run.planned > 0
      ? ` (${Math.floor((run.done / run.planned) * 100)}%)`
      : ""
  const pace =
    run.itemsPerSecond === null || run.itemsPerSecond === 0
      ? ""
      : `; ${run.itemsPerSecond.toFixed(0)} items/s${run.etaSeconds === null || run.phase === "done" ? "" : `, ETA ${duration(run.etaSeconds)}`}`
  return `  progress    ${run.phase ?? "?"}: ${known(run.done)} of ${known(run.planned)} done${share}, ${known(run.failed)} failed, ${known(run.restarts)} restarts${pace}; saved ${duration(run.savedAgeSeconds)} ago`
}

const asText = (all: ReadonlyArray<SourceStatus>) =>
  all.length === 0
    ? "no sources yet: run `tidemark sync PATH`"
    : all
        .map((s) =>
          [
            `${s.id} (${s.kind} ${s.root})`,
            s.jsonl !== null
              ? `  files       ${s.jsonl.files}${s.jsonl.gone > 0 ? ` (and ${s.jsonl.gone} gone, their entries kept)` : ""}, ${s.jsonl.entries} entries`
              : s.documents === null
                ? `  items       stored by the ${s.sink} sink (it counts them)`
                : `  documents   ${s.documents}`,
            ...(s.jsonl?.backlog ?? []).map(
              (b) => `  backlog     ${b.path}: ${b.entries} new entries left for the next syncs (flood cap)`
            ),
            ...(s.jsonl === null || s.jsonl.pendingTails.length === 0
              ? []
              : [
                  `  writing     ${s.jsonl.pendingTails.join(", ")}: last line still being written (waits for the next sync)`
                ]),
            `  last sync   ${s.lastSync ?? "never completed"}`,
            `  open op     ${s.openOp === null ? "none" : `op ${s.openOp.id} since ${s.openOp.startedAt}: ${s.openOp.banked}${s.openOp.planned === null ? "" : ` of ${s.openOp.planned}`} banked${commitRange(s.openOp)}, ${s.openOp.restarts} restarts (rerun to continue)`}`,
            ...(s.run === null ? [] : [runLine(s.run)]),
            `  running     ${s.lock === null ? "no" : `pid ${s.lock.pid} on ${s.lock.host}, heartbeat ${s.lock.heartbeatAgeSeconds.toFixed(1)}s ago`}`,
            ...(s.uncommitted ? ["  work tree   has uncommitted changes: only commits are synced"] : []),
            ...s.maintenance.map(
              (m) =>
                `  maintenance ${m.kind} owed since ${m.pendingSince}${m.payer === null ? "" : m.payer.startsWith("scheduled:") ? ", a payer is starting" : ", being paid"}${m.attempts > 0 ? `; ${m.attempts} failed attempts (${m.lastError ?? "?"}), next in ${duration(m.nextAttemptInSeconds)}` : ""}`
            ),
            `  item errors ${s.itemErrors}`,
            ...s.recentErrors.map(
              (e) => `    ${JSON.stringify(e.key)}: ${e.error}${e.attempts > 1 ? ` (${e.attempts} attempts)` : ""}`
            )
          ].join("\n")
        )
        .join("\n\n")

export const statusCommand = Command.make(
  "status",
  { ...dbOptions, json: Options.boolean("json").pipe(Options.withDescription("Print JSON.")) },
  (flags) =>
    statuses.pipe(
      Effect.flatMap((all) => Console.log(flags.json ? JSON.stringify(all) : asText(all))),
      withDatabase(flags)
    )
).pipe(Command.withDescription("Per source: documents, last sync, the open op, item errors, who is syncing it now."))
