/** The flags of `tidemark sync`, checked when the command line is parsed. */
import { Args, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import * as LeaseTimings from "../../lock/LeaseTimings.js"
import { dbOptions } from "../DbOptions.js"
import { maintenanceModes, modeConfig } from "../maintenance/Background.js"
import * as Flags from "../flags.js"

/** A dotted field path (`uuid`, `message.id`). */
const fieldPathFlag = (name: string, description: string) =>
  Options.text(name).pipe(
    Options.withDescription(description),
    Options.mapEffect((text) =>
      /^[^.\s]+(\.[^.\s]+)*$/.test(text)
        ? Effect.succeed(text)
        : Effect.fail(
            ValidationError.invalidValue(
              HelpDoc.p(`--${name} ${text} is not a dotted field path (e.g. uuid or message.id)`)
            )
          )
    ),
    Options.optional
  )

export const syncOptions = {
  ...dbOptions,
  path: Args.path({ name: "PATH", exists: "yes" }).pipe(
    Args.withDescription("The folder, git repository or (with --jsonl) JSONL file or folder to sync.")
  ),
  source: Options.text("source").pipe(
    Options.withDescription("Name of the source (default: PATH, absolute)."),
    Options.optional
  ),
  git: Options.boolean("git").pipe(
    Options.withDescription("Sync PATH as a git repository (the default when PATH has a .git).")
  ),
  ref: Options.text("ref").pipe(
    Options.withDescription("Git: the branch, tag or commit to sync (default HEAD). Implies --git."),
    Options.optional
  ),
  jsonl: Options.boolean("jsonl").pipe(
    Options.withDescription(
      "Sync PATH's append-only JSONL files (or PATH, a JSONL file), entry by entry, exactly once."
    )
  ),
  idField: fieldPathFlag("id-field", "JSONL: the entries' identity, a dotted field path (default: their position)."),
  messageField: fieldPathFlag(
    "message-field",
    "JSONL: entries with this field are messages, the others metadata (default: role, else message.role)."
  ),
  maintenance: Options.choice("maintenance", maintenanceModes).pipe(
    Options.withDescription(
      "After the sync, pay its maintenance debt (search vectors, links, statistics): in a background process (returns at once), inline (before exiting), or not now (default: $TIDEMARK_MAINTENANCE, else background)."
    ),
    Options.withFallbackConfig(modeConfig)
  ),
  searchConfig: Options.text("search-config").pipe(
    Options.withDescription(
      "The text search configuration of the source's search vectors (default simple; e.g. english)."
    ),
    Options.mapEffect((name) =>
      /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/i.test(name)
        ? Effect.succeed(name)
        : Effect.fail(
            ValidationError.invalidValue(HelpDoc.p(`--search-config ${name} is not a text search configuration name`))
          )
    ),
    Options.optional
  ),
  mirror: Options.boolean("mirror").pipe(
    Options.withDescription("JSONL: delete the entries of a file that is gone (default: keep them, marked gone).")
  ),
  leaseTtl: Flags.duration(
    "lease-ttl",
    "How long the source's lease outlives a holder that stopped renewing it (hung, or on a lost host) before another sync may take over (default 30s).",
    "3 millis"
  ).pipe(
    Options.mapEffect((ttl) =>
      Option.match(ttl, {
        onNone: () => Effect.succeed(Option.none<LeaseTimings.LeaseTimings>()),
        onSome: (value) =>
          Either.match(LeaseTimings.fromTtl(value), {
            onLeft: (invalid) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--lease-ttl: ${invalid.reason}`))),
            onRight: (timings) => Effect.succeed(Option.some(timings))
          })
      })
    )
  ),
  stateFlushEvery: Flags.duration(
    "state-flush-every",
    "How often the progress shown by `tidemark status` is saved while syncing (default 30s).",
    "100 millis"
  ),
  watch: Options.boolean("watch").pipe(
    Options.withDescription(
      "Keep syncing: a first sync, then one per settled batch of file-system changes (git: of the ref), under one lease, until SIGINT/SIGTERM."
    )
  ),
  debounce: Flags.duration(
    "debounce",
    "Watch: quiet after the last change before a round starts (default 100ms; a round starts at most 1s after its first change).",
    "1 millis"
  ),
  rescanEvery: Flags.duration(
    "rescan-every",
    "Watch: a round after this long without changes, catching any the OS dropped (default 5m).",
    "1 seconds"
  ),
  timeout: Flags.duration(
    "timeout",
    "Stop cooperatively after this long (e.g. 90s, 5m), saving progress: exit 75.",
    "1 millis"
  ),
  concurrency: Flags.integerIn("concurrency", "Files read at once (default 4).", { min: 1, max: 64 }).pipe(
    Options.withDefault(4)
  ),
  json: Options.boolean("json").pipe(
    Options.withDescription("Progress as JSON lines on stderr, the result as JSON on stdout.")
  ),
  wait: Options.boolean("wait").pipe(
    Options.withDescription("If another sync of this source runs, wait for it (up to 1 hour) instead of skipping.")
  ),
  dryRun: Options.boolean("dry-run").pipe(
    Options.withDescription("Print what would be imported and deleted; write nothing.")
  ),
  allowMassChange: Options.boolean("allow-mass-change").pipe(
    Options.withDescription(
      "Allow importing or deleting more than max(20% of what is stored, 50) in one sync (JSONL: lift the flood cap)."
    )
  ),
  include: Options.text("include").pipe(
    Options.withDescription("Glob of files to sync (repeatable; default all, JSONL: *.jsonl and their rotations)."),
    Options.repeated
  ),
  exclude: Options.text("exclude").pipe(
    Options.withDescription("Glob to leave out (repeatable; .git/ and node_modules/ always are)."),
    Options.repeated
  ),
  maxSizeMb: Flags.integerIn("max-size-mb", "Larger files (JSONL: lines) are item errors (default 10).", {
    min: 1,
    max: 1024
  }).pipe(Options.withDefault(10))
}
