/**
 * `tidemark db start|stop|url`: the embedded server as a server people and
 * programs connect to. None of them starts a server it was not asked to:
 * `url` only describes, `stop` never stops one tidemark did not start. With
 * `DATABASE_URL` set there is no embedded server to manage: said so.
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { DbSettings } from "../../db/DbSettings.js"
import { embeddedPaths } from "../../db/embedded/paths.js"
import * as ServerControl from "../../db/embedded/ServerControl.js"
import { dbOptions, settingsLayer } from "../DbOptions.js"
import { integerIn } from "../flags.js"
import { UsageError } from "../UsageError.js"

const json = Options.boolean("json").pipe(Options.withDescription("Print the answer as JSON."))

/** The embedded server's paths; a usage error when the settings name an external server. */
const embedded = (command: string) =>
  Effect.flatMap(DbSettings, (settings) =>
    Option.isSome(settings.databaseUrl)
      ? Effect.fail(
          new UsageError({
            message: `tidemark db ${command} manages the embedded server, and DATABASE_URL (or --database-url) names another`,
            hint: "unset DATABASE_URL to use the embedded server; your own server is yours to start and stop"
          })
        )
      : Effect.succeed(embeddedPaths(settings.home))
  )

const describeState = (s: ServerControl.ServerState): Array<string> => [
  `socket   ${s.socketUrl}`,
  ...(s.tcpUrl === null ? [] : [`tcp      ${s.tcpUrl}`, `password ${s.passwordFile} (mode 0600)`]),
  `home     ${s.home}`
]

const startCommand = Command.make(
  "start",
  {
    ...dbOptions,
    json,
    port: integerIn("port", "Listen on this loopback TCP port too (127.0.0.1, password in the home folder).", {
      min: 1,
      max: 65535
    }).pipe(Options.optional)
  },
  (flags) =>
    Effect.gen(function* () {
      const paths = yield* embedded("start")
      const { state, started } = yield* ServerControl.start(paths, { port: flags.port })
      if (flags.json) return yield* Console.log(JSON.stringify({ ...state, started }))
      const how =
        state.startedBy === "other"
          ? "already running, not started by tidemark: left as it is"
          : started
            ? "started; it runs until tidemark db stop"
            : "already running; kept running until tidemark db stop"
      yield* Console.log([`embedded PostgreSQL (pid ${state.pid}) ${how}`, ...describeState(state)].join("\n"))
    }).pipe(Effect.provide(settingsLayer(flags)))
).pipe(Command.withDescription("Start the embedded PostgreSQL server and keep it running until `tidemark db stop`."))

const stopCommand = Command.make("stop", { ...dbOptions, json }, (flags) =>
  Effect.gen(function* () {
    const paths = yield* embedded("stop")
    const result = yield* ServerControl.stop(paths)
    if (flags.json) return yield* Console.log(JSON.stringify(result))
    yield* Console.log(
      result.outcome === "stops when the commands using it finish"
        ? `embedded PostgreSQL in use by ${result.clients} tidemark command(s): it stops when they finish`
        : `embedded PostgreSQL ${result.outcome}`
    )
  }).pipe(Effect.provide(settingsLayer(flags)))
).pipe(Command.withDescription("Stop the embedded server that tidemark started (never one started otherwise)."))

const urlCommand = Command.make(
  "url",
  {
    ...dbOptions,
    json,
    tcp: Options.boolean("tcp").pipe(
      Options.withDescription("The loopback TCP URL (after db start --port), reading the password from its file.")
    ),
    showPassword: Options.boolean("show-password").pipe(
      Options.withDescription("With --tcp: the password in the URL itself, for clients that read no password file.")
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const paths = yield* embedded("url")
      const state = yield* ServerControl.describe(paths)
      if (flags.json) return yield* Console.log(JSON.stringify(state))
      if (!state.running)
        yield* Console.error("tidemark: the embedded server is not running: start it with tidemark db start")
      if (!flags.tcp) return yield* Console.log(state.socketUrl)
      if (state.tcpUrl === null) {
        return yield* new UsageError({
          message: "the embedded server does not listen on TCP",
          hint: "start it with tidemark db start --port 5433 (after tidemark db stop, if it runs)"
        })
      }
      yield* Console.log(flags.showPassword ? ServerControl.tcpUrlWithPassword(paths, state.port) : state.tcpUrl)
    }).pipe(Effect.provide(settingsLayer(flags)))
).pipe(Command.withDescription("Print a connection string of the embedded server (psql and applications accept it)."))

export const dbServerCommands = [startCommand, stopCommand, urlCommand] as const
