/**
 * How a sync's result reads on stdout, for people (JSON is the summary itself).
 * A dry run names what it would import and delete (the first 20 of each; JSON
 * has them all); a real sync names the first 20 of each on stderr with
 * `--verbose`. The progress output is ended first, so the result starts a line.
 */
import { Console, Effect } from "effect"
import type * as JsonlSync from "../../source/jsonl/JsonlSync.js"
import { sampleSize } from "../../sync/Progress.js"
import type * as SyncProgram from "../../sync/SyncProgram.js"
import * as ProgressReporter from "../ProgressReporter.js"

/** A key on one line: control characters (a newline in a file name) written as escapes. */
const printable = (key: string) => key.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1))

/** Lines naming the first `sampleSize` of `keys` (`total` of them in all), then how many more. */
export const namedLines = (verb: string, keys: ReadonlyArray<string>, total: number): Array<string> => {
  const shown = keys.slice(0, sampleSize).map((key) => `${verb} ${printable(key)}`)
  const more = total - shown.length
  return more > 0 ? [...shown, `… and ${more} more`] : shown
}

/** A dry run's names on stdout (indented under its summary line); a real sync's as debug lines (--verbose). */
const printNames = (
  s: SyncProgram.SyncSummary,
  lists: ReadonlyArray<readonly [verb: string, keys: ReadonlyArray<string> | undefined, total: number]>
) =>
  Effect.forEach(lists, ([verb, keys, total]) =>
    keys === undefined || total === 0
      ? Effect.void
      : Effect.forEach(namedLines(verb, keys, total), (line) =>
          s.dryRun ? Console.log(`  ${line}`) : Effect.logDebug(line)
        )
  )

export const printSummary = (s: SyncProgram.SyncSummary, kind: "dir" | "git") =>
  Effect.gen(function* () {
    yield* ProgressReporter.end
    const verb = s.dryRun ? "would import" : "imported"
    const at = s.target.commit === undefined ? "" : ` at ${s.target.commit.slice(0, 12)}`
    const rechecks = s.wouldRecheck?.length ?? 0
    yield* Console.log(
      `${s.dryRun ? "dry run of" : "synced"} ${s.sourceId}${at}: ${verb} ${s.imported}, ${s.dryRun ? "would delete" : "deleted"} ${s.deleted}, ${s.failed} failed, ${s.unchanged} unchanged${rechecks > 0 ? `, ${rechecks} to re-check (modified within 2 s of their last read: imported only if changed)` : ""}${s.resumed ? ` (resumed op ${s.opId}, restart ${s.restarts})` : ""}`
    )
    yield* printNames(
      s,
      s.dryRun
        ? [
            ["would import", s.wouldImport, s.imported],
            ["would delete", s.wouldDelete, s.deleted],
            ["would re-check", s.wouldRecheck, rechecks]
          ]
        : [
            ["imported", s.firstImported, s.imported],
            ["deleted", s.firstDeleted, s.deleted]
          ]
    )
    if (s.failed > 0)
      yield* Console.log(
        `  ${s.failed} items failed: see \`tidemark status\`; ${kind === "git" ? "they are retried when a commit changes them" : "they are retried by every sync"}`
      )
  })

export const printJsonlSummary = (s: JsonlSync.JsonlSummary) =>
  Effect.gen(function* () {
    yield* ProgressReporter.end
    const { paths } = s
    yield* Console.log(
      `${s.dryRun ? "dry run of" : "synced"} ${s.sourceId}: ${s.seen} files (${paths.new} new, ${paths.tail} by their tail, ${paths.reconcile} reconciled, ${paths.unchanged} unchanged); ${s.dryRun ? "would import" : "imported"} ${s.imported} entries, ${s.failed} failed${s.gone.length > 0 ? `; ${s.gone.length} files gone${s.entriesDeleted > 0 ? ` (${s.entriesDeleted} entries deleted)` : " (their entries kept)"}` : ""}${s.resumed ? ` (resumed op ${s.opId}, restart ${s.restarts})` : ""}`
    )
    const importedFrom = s.files.filter((file) => file.imported > 0).length
    yield* printNames(
      s,
      s.dryRun
        ? [
            ["would import from", s.wouldImport, importedFrom],
            ["gone", s.wouldDelete, s.gone.length]
          ]
        : [
            ["imported from", s.firstImported, importedFrom],
            ["gone", s.firstDeleted, s.gone.length]
          ]
    )
    for (const file of s.files) {
      if (file.backlog > 0)
        yield* Console.log(`  ${file.path}: ${file.backlog} new entries left for the next syncs (flood cap)`)
    }
    if (s.pendingTails > 0)
      yield* Console.log(`  ${s.pendingTails} files end in a line still being written: it waits for the next sync`)
    if (s.failed > 0) yield* Console.log(`  ${s.failed} lines or files failed: see \`tidemark status\``)
  })
