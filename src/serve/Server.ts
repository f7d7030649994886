/**
 * The status server: `/` (the status page), `/api/status` (JSON, the
 * `ApiStatus` schema), `/metrics` (Prometheus text; the gauges refreshed from
 * the database first) and `/healthz` (200 while the database answers, 503 with
 * the reason when not). Served by `tidemark serve` and inside `tidemark worker`.
 *
 * Loopback only unless `--host` says otherwise, and then only with a token:
 * every path but `/healthz` needs `Authorization: Bearer <token>` (or
 * `?token=` for a browser), compared in constant time. The requests are not
 * traced: a scrape every few seconds would bury the syncs' traces.
 */
import { timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Data, Effect, Layer, Option, Redacted, Schema } from "effect"
import { ApiStatus } from "../status/StatusSchema.js"
import * as Page from "./page.js"
import * as Prometheus from "./Prometheus.js"
import * as StatusGauges from "./StatusGauges.js"
import { StatusReader } from "./StatusReader.js"

export interface ServeOptions {
  readonly host: string
  readonly port: number
  readonly token: Option.Option<Redacted.Redacted<string>>
}

export const defaultPort = 7373

/** The server could not listen (the port is taken, the address is not this machine's). */
export class ServeFailed extends Data.TaggedError("ServeFailed")<{
  readonly address: string
  readonly reason: string
}> {
  override get message() {
    return `could not serve on ${this.address}: ${this.reason}`
  }
}

export const isLoopback = (host: string) =>
  host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host)

const encodeStatus = Schema.encode(ApiStatus)

const sameToken = (given: string, expected: Redacted.Redacted<string>) => {
  const a = Buffer.from(given)
  const b = Buffer.from(Redacted.value(expected))
  return a.length === b.length && timingSafeEqual(a, b)
}

/** Whether the request carries the token (always, without one). */
const authorized = (token: ServeOptions["token"]) =>
  Effect.gen(function* () {
    if (Option.isNone(token)) return true
    const request = yield* HttpServerRequest.HttpServerRequest
    const header = request.headers["authorization"]
    if (header !== undefined && header.startsWith("Bearer ")) return sameToken(header.slice(7).trim(), token.value)
    const params = yield* HttpServerRequest.ParsedSearchParams
    const fromQuery = params["token"]
    return typeof fromQuery === "string" && sameToken(fromQuery, token.value)
  })

const unavailable = (message: string) => HttpServerResponse.unsafeJson({ error: message }, { status: 503 })

const router = (options: ServeOptions, page: string) => {
  const guarded = <E, R>(handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    Effect.flatMap(authorized(options.token), (ok) =>
      ok
        ? handler
        : Effect.succeed(
            HttpServerResponse.text("a token is needed: Authorization: Bearer <token>, or ?token=<token>\n", {
              status: 401,
              headers: { "www-authenticate": 'Bearer realm="tidemark"' }
            })
          )
    )
  return HttpRouter.empty.pipe(
    HttpRouter.get(
      "/",
      guarded(
        Effect.succeed(HttpServerResponse.html(page).pipe(HttpServerResponse.setHeader("cache-control", "no-store")))
      )
    ),
    HttpRouter.get(
      "/api/status",
      guarded(
        Effect.gen(function* () {
          const status = yield* (yield* StatusReader).read
          return HttpServerResponse.unsafeJson(yield* encodeStatus(status), {
            headers: { "cache-control": "no-store" }
          })
        }).pipe(Effect.catchTags({ StatusUnavailable: (e) => Effect.succeed(unavailable(e.message)) }))
      )
    ),
    HttpRouter.get(
      "/metrics",
      guarded(
        StatusGauges.refresh.pipe(
          Effect.catchTag("StatusUnavailable", (error) => Effect.logWarning(`metrics: ${error.message}`)),
          Effect.map(() => HttpServerResponse.text(Prometheus.render(), { contentType: Prometheus.contentType }))
        )
      )
    ),
    HttpRouter.get(
      "/healthz",
      Effect.flatMap(StatusReader, (reader) => reader.ping).pipe(
        Effect.as(HttpServerResponse.unsafeJson({ ok: true })),
        Effect.catchTag("StatusUnavailable", (e) => Effect.succeed(unavailable(e.message)))
      )
    )
  )
}

/**
 * Serves until the scope closes; logs the address it listens on (with the port
 * the system chose, for `--port 0`).
 */
export const layer = (options: ServeOptions): Layer.Layer<never, ServeFailed, StatusReader> =>
  Layer.unwrapEffect(
    Effect.map(Page.load, (page) =>
      HttpServer.serve(router(options, page)).pipe(
        HttpServer.withLogAddress,
        HttpMiddleware.withTracerDisabledWhen(() => true),
        Layer.provide(NodeHttpServer.layer(createServer, { host: options.host, port: options.port })),
        Layer.catchAll((error) =>
          Layer.fail(
            new ServeFailed({
              address: HttpServer.formatAddress({ _tag: "TcpAddress", hostname: options.host, port: options.port }),
              reason: error.cause instanceof Error ? error.cause.message : String(error.cause ?? error)
            })
          )
        )
      )
    )
  )
