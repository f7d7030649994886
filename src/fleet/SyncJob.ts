/**
 * One `sync` job: the recorded source synced the way `tidemark sync` would,
 * under its lease, fenced, resumable. What a worker must refuse to do is
 * delete: a folder it cannot see (an unmounted share) fails the job with that
 * reason before anything is planned, and the mass-change guard stays on.
 *
 * The job waits for the source's lease rather than skipping: after a worker
 * froze, its lease is still there until its ttl runs out, and the job that
 * replaced it must then take over, not end as "already running".
 */
import * as fs from "node:fs"
import { Data, Duration, Effect, Option, Ref } from "effect"
import { DbSettings } from "../db/DbSettings.js"
import { defaultEntryFields, fieldPath } from "../source/jsonl/Entry.js"
import * as JsonlSync from "../source/jsonl/JsonlSync.js"
import * as OpenSource from "../sync/OpenSource.js"
import { initialProgress } from "../sync/Progress.js"
import * as SyncProgram from "../sync/SyncProgram.js"
import * as GitMirror from "./GitMirror.js"
import { SourceRegistry } from "./SourceRegistry.js"
import * as SourceSpec from "./SourceSpec.js"

/** A recorded folder or JSONL location this worker cannot see: nothing is synced, nothing deleted. */
export class LocationUnreachable extends Data.TaggedError("LocationUnreachable")<{
  readonly name: string
  readonly location: string
  readonly reason: string
}> {
  override get message() {
    return `source ${this.name}: ${this.location} ${this.reason} on this worker: not synced (nothing deleted)`
  }
  get hint() {
    return "a folder or JSONL source must be on a path every worker sees (a shared mount)"
  }
}

/** How long a job waits for a source's lease that another holds (a frozen worker's runs out within its ttl). */
export const leaseWait = Duration.minutes(2)

const reachable = (name: string, spec: SourceSpec.SourceSpec) =>
  Effect.try({
    try: () => fs.statSync(spec.location),
    catch: (cause) =>
      new LocationUnreachable({
        name,
        location: spec.location,
        reason:
          (cause as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : `cannot be read (${String(cause)})`
      })
  }).pipe(
    Effect.filterOrFail(
      (stat) => spec.kind === "jsonl" || stat.isDirectory(),
      () => new LocationUnreachable({ name, location: spec.location, reason: "is not a folder" })
    )
  )

const syncSpec = (name: string, spec: SourceSpec.SourceSpec) =>
  Effect.gen(function* () {
    const progress = yield* Ref.make(initialProgress)
    const maxBytes = spec.maxSizeMb * 1024 * 1024
    const common = { sourceId: name, progress, allowMassChange: spec.allowMassChange, wait: leaseWait }
    if (spec.kind === "jsonl") {
      yield* reachable(name, spec)
      return yield* JsonlSync.run({
        ...common,
        root: spec.location,
        selection: OpenSource.jsonlSelection(spec),
        fields: {
          idField: spec.idField === undefined ? null : fieldPath(spec.idField),
          messageFields:
            spec.messageField === undefined ? defaultEntryFields.messageFields : [fieldPath(spec.messageField)]
        },
        maxLineBytes: maxBytes,
        mirror: spec.mirror ?? false,
        concurrency: Math.min(spec.concurrency, 8)
      })
    }
    const selection = { include: spec.include, exclude: spec.exclude, maxBytes }
    let source
    if (spec.kind === "git") {
      if (SourceSpec.isUrl(spec.location)) {
        const mirror = yield* GitMirror.update((yield* DbSettings).home, name, spec.location)
        // Known by its URL, whichever worker's mirror it is read from.
        source = { ...(yield* OpenSource.repository(mirror, spec.ref, selection)), root: spec.location }
      } else {
        source = yield* OpenSource.repository(spec.location, spec.ref, selection)
      }
    } else {
      yield* reachable(name, spec)
      source = yield* OpenSource.folder(spec.location, selection)
    }
    return yield* SyncProgram.run({
      ...common,
      source,
      concurrency: spec.concurrency,
      ...(spec.searchConfig === undefined ? {} : { searchConfig: spec.searchConfig })
    })
  })

/** The job's result (pg-boss keeps it as the job's output): the sync's summary, or why there was none. */
export type SyncJobResult =
  | { readonly source: string; readonly synced: SyncProgram.SyncSummary }
  | { readonly source: string; readonly skipped: string }

export const run = Effect.fn("SyncJob.run")(function* (name: string) {
  const recorded = yield* (yield* SourceRegistry).get(name)
  if (Option.isNone(recorded)) {
    // Removed after the job was queued: there is nothing to sync, and nothing to retry.
    return { source: name, skipped: "the source is not recorded (removed?)" } satisfies SyncJobResult
  }
  const synced = yield* syncSpec(name, recorded.value.spec)
  return { source: name, synced } satisfies SyncJobResult
})
