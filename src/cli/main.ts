/**
 * The `tidemark` command. Every outcome becomes one of the documented exit
 * codes: failures are rendered here as one line plus a hint (secrets
 * scrubbed), and SIGINT/SIGTERM interrupt the work (running every finalizer)
 * and exit 130/143. A second signal kills at once: the listeners below fire
 * once, and the runtime removes its own after the first.
 */
import { Command, ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, type Exit, Redacted } from "effect"
import { packageVersion } from "../packageRoot.js"
import { exitCodeOf, ExitCode } from "./ExitCode.js"
import * as StderrLogger from "../log/StderrLogger.js"
import { scrubSecrets } from "../log/redact.js"
import { renderFailure } from "./render.js"
import { dbCommand } from "./commands/db.js"
import { psqlCommand } from "./commands/psql.js"
import { lockCommand } from "./commands/lock.js"
import { linksCommand } from "./commands/links.js"
import { maintainCommand } from "./commands/maintain.js"
import { searchCommand } from "./commands/search.js"
import { migrateCommand } from "./commands/migrate.js"
import { statusCommand } from "./commands/status.js"
import { sourceCommand } from "./commands/source.js"
import { enqueueCommand, workerCommand, workersCommand } from "./fleet/worker.js"
import { sourcesCommand } from "./commands/sources.js"
import { syncCommand } from "./commands/sync.js"
import { serveCommand } from "./commands/serve.js"
import * as Telemetry from "../telemetry/Telemetry.js"

let receivedSignal: NodeJS.Signals | undefined
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    receivedSignal ??= signal
    // Said at once: the work may take a moment to stop (batches in flight finish and are banked).
    process.stderr.write(
      `tidemark: ${signal} received: stopping after the work in flight (a second signal stops at once)\n`
    )
  })
}

/** Every secret this process was given, so that no message can echo one. */
const knownSecrets = (): Array<Redacted.Redacted<string>> => {
  const values = [process.env["DATABASE_URL"], process.env["DIRECT_DATABASE_URL"], process.env["TIDEMARK_TOKEN"]]
  // A collector's headers are credentials (an API key, a bearer token).
  for (const header of (process.env["OTEL_EXPORTER_OTLP_HEADERS"] ?? "").split(",")) {
    const at = header.indexOf("=")
    if (at > 0) values.push(header.slice(at + 1).trim())
  }
  process.argv.forEach((arg, index) => {
    if (arg === "--database-url" || arg === "--direct-database-url" || arg === "--token") {
      values.push(process.argv[index + 1])
    }
    const inline = /^--(?:(?:direct-)?database-url|token)=(.*)$/.exec(arg)
    if (inline !== null) values.push(inline[1])
  })
  return values.filter((v): v is string => v !== undefined && v !== "").map((v) => Redacted.make(v))
}

const report = (failure: unknown) =>
  Effect.gen(function* () {
    const rendered = renderFailure(failure)
    const secrets = knownSecrets()
    yield* Console.error(`tidemark: error: ${scrubSecrets(rendered.line, secrets)}`)
    if (rendered.hint !== undefined) yield* Console.error(`  hint: ${scrubSecrets(rendered.hint, secrets)}`)
  })

/** Failures of the command's own making, by tag: a usage error, or stopped with progress saved. */
const exitCodeOfFailure = (error: unknown): ExitCode => {
  switch ((error as { readonly _tag?: unknown } | null)?._tag) {
    case "UsageError":
    case "InvalidDatabaseUrl":
    case "TelemetryConfigError":
      return ExitCode.usage
    case "PartialRun":
      return ExitCode.partial
    default:
      return ExitCode.failure
  }
}

const tidemark = Command.make("tidemark").pipe(
  Command.withDescription("Sync folders, git repositories and JSONL logs into PostgreSQL, resumably."),
  Command.withSubcommands([
    syncCommand,
    statusCommand,
    searchCommand,
    linksCommand,
    maintainCommand,
    migrateCommand,
    dbCommand,
    psqlCommand,
    lockCommand,
    sourcesCommand,
    sourceCommand,
    enqueueCommand,
    workerCommand,
    workersCommand,
    serveCommand
  ])
)

const cli = Command.run(tidemark, { name: "tidemark", version: packageVersion })

// The escapes @effect/cli's help is written with.
const sgr = /\x1b\[[0-9;]*m/g
const usageLine = /^((?:\x1b\[[0-9;]*m)*)\$ (tidemark\b)?/gm

/** A flag's help block (its paragraphs after its type), ending in the library's "optional": a flag is off unless given. */
const flagOff =
  /(A true or false value\.(?:\n\n {2}(?!This setting is optional\.)[^\n]*)*)\n\n {2}This setting is optional\./g

/** Colour only for a terminal, and never with NO_COLOR set (https://no-color.org). */
const colours = (stream: NodeJS.WriteStream) => stream.isTTY === true && !process.env["NO_COLOR"]

/**
 * What @effect/cli prints, for people: its usage lines read `tidemark sync …`
 * (it writes `$ sync …`), a flag's help says it is off by default, and its
 * colours are dropped where they do not belong.
 */
const forPeople = (stream: NodeJS.WriteStream) => (arg: unknown) => {
  if (typeof arg !== "string") return arg
  const text = /^(?:\x1b\[[0-9;]*m)*USAGE/m.test(arg)
    ? arg
        .replace(usageLine, (_, escapes: string, name?: string) => `${escapes}${name ?? "tidemark "}`)
        .replace(flagOff, "$1\n\n  Default: off.")
    : arg
  return colours(stream) ? text : text.replace(sgr, "")
}

const peopleConsole = (base: Console.Console): Console.Console => {
  const out = forPeople(process.stdout)
  const err = forPeople(process.stderr)
  return {
    ...base,
    log: (...args) => base.log(...args.map(out)),
    error: (...args) => base.error(...args.map(err)),
    unsafe: {
      ...base.unsafe,
      log: (...args) => base.unsafe.log(...args.map(out)),
      error: (...args) => base.unsafe.error(...args.map(err))
    }
  }
}

/**
 * A command that ends is one trace, under a span named for it; the long-running ones
 * (a worker, the server, a watch) are not: each of their jobs or rounds is a trace of its own.
 */
const commandSpan = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const command = process.argv[2]
  const longRunning =
    command === undefined || command === "worker" || command === "serve" || process.argv.includes("--watch")
  return longRunning || command.startsWith("-")
    ? self
    : Effect.withSpan(self, `tidemark ${command}`, { attributes: { "tidemark.command": command }, root: true })
}

// Telemetry wraps the command: its exporters send what is buffered when the command ends, signal or not.
const program = Effect.consoleWith((base) =>
  Effect.withConsole(commandSpan(cli(process.argv)), peopleConsole(base))
).pipe(
  Effect.provide(Telemetry.layer),
  Effect.as<ExitCode>(ExitCode.ok),
  Effect.catchAll((error) =>
    ValidationError.isValidationError(error)
      ? Effect.succeed<ExitCode>(ExitCode.usage)
      : Effect.as(report(error), exitCodeOfFailure(error))
  ),
  Effect.catchAllDefect((defect) =>
    Effect.as(
      Effect.zipRight(
        report(defect),
        process.env["TIDEMARK_DEBUG"] ? Console.error(Cause.pretty(Cause.die(defect))) : Effect.void
      ),
      ExitCode.failure
    )
  ),
  Effect.provide(NodeContext.layer),
  Effect.provide(StderrLogger.layer())
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  disablePrettyLogger: true,
  teardown: (exit, onExit) => onExit(exitCodeOf(exit as Exit.Exit<ExitCode, unknown>, receivedSignal))
})
