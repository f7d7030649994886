/** `tidemark status` for people: a block of lines per source. */
import type { SourceStatus } from "../../status/StatusSchema.js"

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

export const asText = (all: ReadonlyArray<SourceStatus>) =>
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
