/**
 * `tidemark sources [--json]`: every source, one line each: name, kind, root,
 * sink, how many documents or entries it has (the exact counts kept on
 * `tidemark.sources`), its last completed sync, and who syncs it now.
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import { MainDb } from "../../db/Database.js"
import { dbOptions, withDatabase } from "../DbOptions.js"

export interface SourceLine {
  readonly name: string
  readonly kind: string
  readonly root: string
  readonly sink: string
  /** Documents, for a source of the documents sink; null for another sink (it counts its own). */
  readonly documents: number | null
  /** JSONL: entries present in their files; null for other kinds. */
  readonly entries: number | null
  readonly lastSync: string | null
  /** Who holds its sync lease now, if anybody. */
  readonly syncing: { readonly pid: number; readonly host: string } | null
}

export const listSources = Effect.gen(function* () {
  const { sql } = yield* MainDb
  const rows = yield* sql<{
    id: string
    kind: string
    root: string
    sink: string
    documents: string
    entries: string
    last_sync: Date | null
    pid: number | null
    host: string | null
  }>`
    SELECT s.id, s.kind, s.root, s.sink, s.documents, s.entries,
           (SELECT max(completed_at) FROM tidemark.ops o WHERE o.source_id = s.id AND o.status = 'done') AS last_sync,
           l.pid, l.host
      FROM tidemark.sources s
      LEFT JOIN tidemark.locks l ON l.name = 'sync:' || s.id AND l.expires_at > now()
     ORDER BY s.id`
  return rows.map((r): SourceLine => ({
    name: r.id,
    kind: r.kind,
    root: r.root,
    sink: r.sink,
    documents: r.kind !== "jsonl" && r.sink === "documents" ? Number(r.documents) : null,
    entries: r.kind === "jsonl" ? Number(r.entries) : null,
    lastSync: r.last_sync?.toISOString() ?? null,
    syncing: r.pid === null ? null : { pid: r.pid, host: r.host! }
  }))
})

const itemsOf = (s: SourceLine) =>
  s.entries !== null ? `${s.entries} entries` : s.documents !== null ? `${s.documents} documents` : `(${s.sink} sink)`

export const table = (sources: ReadonlyArray<SourceLine>): string => {
  if (sources.length === 0) return "no sources yet: run `tidemark sync PATH`"
  const header = ["NAME", "KIND", "ROOT", "SINK", "ITEMS", "LAST SYNC", "SYNCING"]
  const lines = sources.map((s) => [
    s.name,
    s.kind,
    s.root,
    s.sink,
    itemsOf(s),
    s.lastSync ?? "never",
    s.syncing === null ? "no" : `pid ${s.syncing.pid} on ${s.syncing.host}`
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  return [header, ...lines]
    .map((cells) =>
      cells
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

export const sourcesCommand = Command.make(
  "sources",
  { ...dbOptions, json: Options.boolean("json").pipe(Options.withDescription("Print JSON.")) },
  (flags) =>
    listSources.pipe(
      Effect.flatMap((all) => Console.log(flags.json ? JSON.stringify(all) : table(all))),
      withDatabase(flags)
    )
).pipe(
  Command.withDescription(
    "List the sources: name, kind, root, sink, documents or entries, last sync, whether a sync runs now."
  )
)
