/** How a sync's result reads on stdout, for people (JSON is the summary itself). */
import { Console, Effect } from "effect"
import type * as JsonlSync from "../../source/jsonl/JsonlSync.js"
import type * as SyncProgram from "../../sync/SyncProgram.js"

export const printSummary = (s: SyncProgram.SyncSummary, kind: "dir" | "git") =>
  Effect.gen(function* () {
    const verb = s.dryRun ? "would import" : "imported"
    const at = s.target.commit === undefined ? "" : ` at ${s.target.commit.slice(0, 12)}`
    yield* Console.log(
      `${s.dryRun ? "dry run of" : "synced"} ${s.sourceId}${at}: ${verb} ${s.imported}, ${s.dryRun ? "would delete" : "deleted"} ${s.deleted}, ${s.failed} failed, ${s.unchanged} unchanged${s.resumed ? ` (resumed op ${s.opId}, restart ${s.restarts})` : ""}`
    )
    if (s.failed > 0)
      yield* Console.log(
        `  ${s.failed} items failed: see \`tidemark status\`; ${kind === "git" ? "they are retried when a commit changes them" : "they are retried by every sync"}`
      )
  })

export const printJsonlSummary = (s: JsonlSync.JsonlSummary) =>
  Effect.gen(function* () {
    const { paths } = s
    yield* Console.log(
      `${s.dryRun ? "dry run of" : "synced"} ${s.sourceId}: ${s.seen} files (${paths.new} new, ${paths.tail} by their tail, ${paths.reconcile} reconciled, ${paths.unchanged} unchanged); ${s.dryRun ? "would import" : "imported"} ${s.imported} entries, ${s.failed} failed${s.gone.length > 0 ? `; ${s.gone.length} files gone${s.entriesDeleted > 0 ? ` (${s.entriesDeleted} entries deleted)` : " (their entries kept)"}` : ""}${s.resumed ? ` (resumed op ${s.opId}, restart ${s.restarts})` : ""}`
    )
    for (const file of s.files) {
      if (file.backlog > 0)
        yield* Console.log(`  ${file.path}: ${file.backlog} new entries left for the next syncs (flood cap)`)
    }
    if (s.pendingTails > 0)
      yield* Console.log(`  ${s.pendingTails} files end in a line still being written: it waits for the next sync`)
    if (s.failed > 0) yield* Console.log(`  ${s.failed} lines or files failed: see \`tidemark status\``)
  })
