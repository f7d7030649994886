/**
 * `tidemark serve`: the status page, `/api/status`, `/metrics` and `/healthz`
 * for this database, until SIGINT or SIGTERM. With a fleet in the database its
 * workers and queues are shown too (read through a pg-boss client).
 */
import { Command } from "@effect/cli"
import { Effect, Layer, Option } from "effect"
import * as Boss from "../../fleet/Boss.js"
import * as LeaseLock from "../../lock/LeaseLock.js"
import * as PgLeaseStore from "../../lock/PgLeaseStore.js"
import * as Server from "../../serve/Server.js"
import * as StatusGauges from "../../serve/StatusGauges.js"
import * as StatusReader from "../../serve/StatusReader.js"
import * as Telemetry from "../../telemetry/Telemetry.js"
import { dbOptions, withDatabase } from "../DbOptions.js"
import { serveOptions, serveSettings } from "../serveOptions.js"

/** How often the database's gauges are read for an OpenTelemetry export (a scrape reads them itself). */
export const gaugesEvery = "15 seconds"

/** The server, and the gauges kept fresh when metrics are exported. */
export const serving = (options: Server.ServeOptions) =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const exporting = Option.isSome(yield* Effect.orElseSucceed(Telemetry.settings, () => Option.none()))
      return Layer.merge(
        Server.layer(options),
        exporting ? Layer.scopedDiscard(StatusGauges.keepFresh(gaugesEvery)) : Layer.empty
      )
    })
  )

export const serveCommand = Command.make("serve", { ...dbOptions, ...serveOptions }, (flags) =>
  Effect.gen(function* () {
    const options = yield* serveSettings(flags)
    const reader = (yield* StatusReader.hasFleet)
      ? StatusReader.layer.pipe(
          Layer.provide(Boss.layer({ role: "client", poolSize: 2 })),
          Layer.provide(LeaseLock.layer.pipe(Layer.provide(PgLeaseStore.layer)))
        )
      : StatusReader.layerWithoutFleet
    return yield* Layer.launch(serving(options).pipe(Layer.provide(reader)))
  }).pipe(withDatabase(flags))
).pipe(
  Command.withDescription(
    "Serve the status page (/), /api/status (JSON), /metrics (Prometheus) and /healthz, on 127.0.0.1:7373 by default, until stopped."
  )
)
