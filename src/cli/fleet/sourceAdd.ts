/**
 * `tidemark source add NAME PATH|URL` records a source for the fleet, with the
 * sync's own flags and optionally a schedule (`--every 5m`, `--cron EXPR`),
 * which pg-boss fires once per tick across all workers; `tidemark source list`
 * shows what is recorded. A worker syncs a recorded source with exactly the
 * options given here.
 */
import { Args, Command, Options } from "@effect/cli"
import { Console, Duration, Effect, Either, Layer, Option } from "effect"
import * as Boss from "../../fleet/Boss.js"
import * as PgSourceRegistry from "../../fleet/PgSourceRegistry.js"
import { SourceRegistry } from "../../fleet/SourceRegistry.js"
import * as SourceSpec from "../../fleet/SourceSpec.js"
import { dbOptions, withDatabase } from "../DbOptions.js"
import * as Flags from "../flags.js"
import { syncOptions } from "../sync/SyncOptions.js"
import { UsageError } from "../UsageError.js"

const nameArg = Args.text({ name: "NAME" }).pipe(
  Args.withDescription("The source's name: how workers, `enqueue`, `status` and `search` know it.")
)

const addOptions = {
  ...dbOptions,
  name: nameArg,
  location: Args.text({ name: "PATH|URL" }).pipe(
    Args.withDescription(
      "A folder, JSONL file or folder, or git repository every worker sees (a shared mount); for git also an https://, ssh:// or file:// URL, which each worker mirrors."
    )
  ),
  git: syncOptions.git,
  jsonl: syncOptions.jsonl,
  ref: syncOptions.ref,
  idField: syncOptions.idField,
  messageField: syncOptions.messageField,
  mirror: syncOptions.mirror,
  searchConfig: syncOptions.searchConfig,
  include: syncOptions.include,
  exclude: syncOptions.exclude,
  maxSizeMb: syncOptions.maxSizeMb,
  concurrency: syncOptions.concurrency,
  allowMassChange: syncOptions.allowMassChange,
  every: Flags.duration(
    "every",
    "Sync it on this schedule (e.g. 5m, 1h): once per tick across the fleet.",
    "1 minutes"
  ),
  cron: Options.text("cron").pipe(
    Options.withDescription("Sync it on this cron schedule (UTC), e.g. '*/10 * * * *'."),
    Options.optional
  ),
  replace: Options.boolean("replace").pipe(
    Options.withDescription("Record it anew if the name is taken (its synced data stays).")
  ),
  json: Options.boolean("json").pipe(Options.withDescription("Print what was recorded as JSON."))
}

type AddFlags = Command.Command.ParseConfig<typeof addOptions>

const usage = (message: string, hint: string) => new UsageError({ message, hint })

const scheduleOf = (flags: AddFlags): Either.Either<string | null, UsageError> => {
  if (Option.isSome(flags.every) && Option.isSome(flags.cron)) {
    return Either.left(usage("--every and --cron do not go together", "give one schedule"))
  }
  if (Option.isSome(flags.cron)) return Either.right(flags.cron.value.trim())
  if (Option.isNone(flags.every)) return Either.right(null)
  return Either.mapLeft(SourceSpec.cronOfEvery(Duration.toMinutes(flags.every.value)), (reason) =>
    usage(reason, "or give a --cron expression")
  )
}

const specOf = (flags: AddFlags): Either.Either<SourceSpec.SourceSpec, UsageError> => {
  if (flags.git && flags.jsonl) return Either.left(usage("--git and --jsonl do not go together", "drop one"))
  const kind: SourceSpec.SourceKind = flags.jsonl
    ? "jsonl"
    : flags.git || Option.isSome(flags.ref) || SourceSpec.isUrl(flags.location)
      ? "git"
      : "dir"
  return Either.map(
    Either.mapLeft(SourceSpec.normalizeLocation(kind, flags.location, process.cwd()), (reason) =>
      usage(reason, "a URL is for git sources; a folder or JSONL source is a path")
    ),
    (location) => ({
      kind,
      location,
      include: flags.include,
      exclude: flags.exclude,
      maxSizeMb: flags.maxSizeMb,
      concurrency: flags.concurrency,
      allowMassChange: flags.allowMassChange,
      ...Option.match(flags.ref, { onNone: () => ({}), onSome: (ref) => ({ ref }) }),
      ...Option.match(flags.idField, { onNone: () => ({}), onSome: (idField) => ({ idField }) }),
      ...Option.match(flags.messageField, { onNone: () => ({}), onSome: (messageField) => ({ messageField }) }),
      ...(flags.mirror ? { mirror: true } : {}),
      ...Option.match(flags.searchConfig, { onNone: () => ({}), onSome: (searchConfig) => ({ searchConfig }) })
    })
  )
}

const add = Effect.fn("source.add")(function* (flags: AddFlags) {
  const spec = yield* specOf(flags)
  const schedule = yield* scheduleOf(flags)
  const boss = yield* Boss.Boss
  if (schedule !== null) {
    // Checked by pg-boss's own parser before anything is recorded.
    yield* Effect.try({
      try: () => boss.previewSchedule(schedule, { count: 1 }),
      catch: (cause) => usage(`--cron ${schedule} is not a cron expression: ${String(cause)}`, "e.g. '*/10 * * * *'")
    })
  }
  yield* (yield* SourceRegistry).add({ name: flags.name, spec, schedule }, { replace: flags.replace })
  yield* schedule === null
    ? Boss.attempt("removing the schedule", () => boss.unschedule(Boss.queues.sync, flags.name))
    : Boss.attempt("scheduling", () =>
        boss.schedule(
          Boss.queues.sync,
          schedule,
          { source: flags.name },
          { key: flags.name, singletonKey: flags.name, tz: "UTC" }
        )
      )
  yield* Console.log(
    flags.json
      ? JSON.stringify({ recorded: flags.name, spec, schedule })
      : `recorded source ${flags.name} (${spec.kind} ${spec.location})${schedule === null ? "; synced when enqueued (`tidemark enqueue " + flags.name + "`)" : `; synced on the schedule ${schedule} (UTC)`}`
  )
})

const fleetLayer = Layer.merge(PgSourceRegistry.layer, Boss.layer({ role: "client" }))

export const addCommand = Command.make("add", addOptions, (flags) =>
  add(flags).pipe(Effect.provide(fleetLayer), withDatabase(flags))
).pipe(
  Command.withDescription(
    "Record a source for the fleet's workers, with its sync options and optionally a schedule (--every, --cron)."
  )
)

const list = Effect.fn("source.list")(function* (json: boolean) {
  const sources = yield* (yield* SourceRegistry).list
  if (json) {
    return yield* Console.log(
      JSON.stringify(sources.map((s) => ({ name: s.name, spec: s.spec, schedule: s.schedule, createdAt: s.createdAt })))
    )
  }
  if (sources.length === 0) return yield* Console.log("no sources recorded (`tidemark source add NAME PATH|URL`)")
  for (const s of sources) {
    yield* Console.log(`${s.name}  ${s.spec.kind} ${s.spec.location}  ${s.schedule ?? "on enqueue"}`)
  }
})

export const listCommand = Command.make(
  "list",
  { ...dbOptions, json: Options.boolean("json").pipe(Options.withDescription("Print the sources as JSON.")) },
  (flags) => list(flags.json).pipe(Effect.provide(PgSourceRegistry.layer), withDatabase(flags))
).pipe(Command.withDescription("The sources recorded for the fleet, with their schedules."))
