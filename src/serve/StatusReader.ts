/**
 * Reads what `/api/status` serves: every source's status (as `tidemark status
 * --json`) and, where the database has a fleet (pg-boss's schema installed),
 * its workers and queues. Database failures become `StatusUnavailable`, so
 * the server can answer 503 with a reason instead of failing.
 */
import { Context, Data, Effect, Layer } from "effect"
import { MainDb } from "../db/Database.js"
import * as Boss from "../fleet/Boss.js"
import * as FleetStatus from "../fleet/FleetStatus.js"
import { LeaseLock } from "../lock/LeaseLock.js"
import { packageVersion } from "../packageRoot.js"
import { statuses } from "../status/StatusQuery.js"
import type { ApiStatus } from "../status/StatusSchema.js"
import { shortReason } from "../db/Transient.js"

export class StatusUnavailable extends Data.TaggedError("StatusUnavailable")<{
  readonly what: string
  readonly cause: unknown
}> {
  override get message() {
    return `could not read ${this.what}: ${shortReason(this.cause)}`
  }
}

export class StatusReader extends Context.Tag("tidemark/StatusReader")<
  StatusReader,
  {
    readonly read: Effect.Effect<ApiStatus, StatusUnavailable>
    /** The database answers (for `/healthz`). */
    readonly ping: Effect.Effect<void, StatusUnavailable>
  }
>() {}

/** Whether pg-boss's schema is in this database: a fleet was set up (`tidemark migrate`, `source add`, a worker). */
export const hasFleet = Effect.gen(function* () {
  const { sql } = yield* MainDb
  const [row] = yield* sql<{ present: boolean }>`SELECT to_regnamespace(${Boss.bossSchema}) IS NOT NULL AS present`
  return row?.present === true
})

const make = (fleet: Effect.Effect<ApiStatus["fleet"], StatusUnavailable>) =>
  Effect.gen(function* () {
    const db = yield* MainDb
    const read = Effect.gen(function* () {
      const sources = yield* statuses().pipe(
        Effect.mapError((cause) => new StatusUnavailable({ what: "the sources' status", cause }))
      )
      const now = new Date(yield* Effect.clockWith((clock) => clock.currentTimeMillis))
      return { generatedAt: now.toISOString(), version: packageVersion, sources, fleet: yield* fleet }
    }).pipe(Effect.provideService(MainDb, db), Effect.withSpan("tidemark.status.read"))
    const ping = db.sql`SELECT 1`.pipe(
      Effect.asVoid,
      Effect.mapError((cause) => new StatusUnavailable({ what: "the database", cause }))
    )
    return StatusReader.of({ read, ping })
  })

/** The fleet's part read with a pg-boss client this layer starts, if the database has a fleet. */
export const layer: Layer.Layer<StatusReader, never, MainDb | LeaseLock | Boss.Boss> = Layer.effect(
  StatusReader,
  Effect.gen(function* () {
    const context = yield* Effect.context<Boss.Boss | LeaseLock>()
    return yield* make(
      FleetStatus.read().pipe(
        Effect.provide(context),
        Effect.mapError((cause) => new StatusUnavailable({ what: "the fleet's status", cause }))
      )
    )
  })
)

/** For a database without a fleet: `fleet` is null. */
export const layerWithoutFleet: Layer.Layer<StatusReader, never, MainDb> = Layer.effect(
  StatusReader,
  make(Effect.succeed(null))
)
