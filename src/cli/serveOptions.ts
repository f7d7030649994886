/**
 * The status server's flags, shared by `tidemark serve` and `tidemark worker`:
 * `--port`, `--host` (loopback by default), `--token` (or `TIDEMARK_TOKEN`).
 * Serving beyond loopback without a token is refused: the page and the API
 * show every source's paths and errors.
 */
import { Options } from "@effect/cli"
import { Config, Effect, Option } from "effect"
import * as Server from "../serve/Server.js"
import * as Flags from "./flags.js"
import { UsageError } from "./UsageError.js"

const host = Options.text("host").pipe(
  Options.withDescription(
    "The address to listen on (default 127.0.0.1). Anything but loopback needs --token: every request but /healthz must carry it."
  ),
  Options.withDefault("127.0.0.1")
)

const token = Options.redacted("token").pipe(
  Options.withDescription(
    "A token every request but /healthz must carry (Authorization: Bearer TOKEN, or ?token=TOKEN in the page's address); default $TIDEMARK_TOKEN."
  ),
  Options.withFallbackConfig(Config.redacted("TIDEMARK_TOKEN")),
  Options.optional
)

const port = (description: string) => Flags.integerIn("port", description, { min: 0, max: 65535 })

/** The server's address and token, checked: a host beyond loopback needs a token. */
export const serveSettings = (options: Server.ServeOptions): Effect.Effect<Server.ServeOptions, UsageError> =>
  !Server.isLoopback(options.host) && Option.isNone(options.token)
    ? Effect.fail(
        new UsageError({
          message: `serving on ${options.host} needs a token: anyone who can reach it would read every source's status`,
          hint: "give --token TOKEN (or set TIDEMARK_TOKEN), or serve on 127.0.0.1"
        })
      )
    : Effect.succeed(options)

/** `tidemark serve`: the port defaults to 7373. */
export const serveOptions = {
  port: port(`The port to listen on (default ${Server.defaultPort}; 0: any free port, logged).`).pipe(
    Options.withDefault(Server.defaultPort)
  ),
  host,
  token
}

/** `tidemark worker`: serves only when `--port` is given. */
export const workerServeOptions = {
  port: port("Serve the status page, /metrics, /healthz and /api/status on this port while the worker runs.").pipe(
    Options.optional
  ),
  host,
  token
}
