/**
 * One behaviour suite for the sync program, on the stores in memory and on
 * PostgreSQL: the simulation cannot drift from the real thing.
 */
import { describe, layer } from "@effect/vitest"
import { Context, Effect, Layer, TestContext } from "effect"
import { MainDb } from "../src/db/Database.js"
import { MemoryOps } from "../src/ops/MemoryOpsStore.js"
import * as MemorySink from "../src/sink/MemorySink.js"
import { Sink, type SinkShape } from "../src/sink/Sink.js"
import * as Tidemark from "../src/Tidemark.js"
import { Inspect, type Provide, syncBehaviour } from "./support/syncBehaviour.js"
import * as TestDatabase from "./support/TestDatabase.js"

/** Builds `services`, swaps its sink for the wrapped one, and runs `self` on the result. */
const runOn =
  <R, RIn>(
    services: Layer.Layer<R | Sink, never, RIn>,
    inspect: (context: Context.Context<R | Sink>) => Context.Tag.Service<Inspect>
  ) =>
  (wrapSink: (sink: SinkShape) => SinkShape = (sink) => sink) =>
  <A, E, R2>(self: Effect.Effect<A, E, R2>): Effect.Effect<A, E, RIn> =>
    Effect.scoped(
      Effect.gen(function* () {
        const built = yield* Layer.build(services)
        const context = Context.add(
          Context.add(built, Sink, wrapSink(Context.get(built, Sink))),
          Inspect,
          inspect(built)
        )
        return yield* Effect.provide(self, context as Context.Context<R2>)
      })
    )

const memoryProvide =
  (ownWrap: (sink: SinkShape) => SinkShape): Provide =>
  (self, wrapSink) =>
    runOn(Tidemark.layerMemoryWith(), (context) => ({
      stored: (sourceId) =>
        Effect.map(Context.get(context, MemorySink.MemorySink).stored(sourceId), (items) =>
          Object.fromEntries([...items].map(([key, item]) => [key, item.contentHash]))
        ),
      lastOp: (sourceId) =>
        Effect.map(Context.get(context, MemoryOps).snapshot, ({ ops }) => {
          const op = ops.filter((o) => o.sourceId === sourceId).at(-1)
          return op === undefined ? undefined : { status: op.status, restarts: op.restarts }
        })
    }))((sink) => ownWrap(wrapSink === undefined ? sink : wrapSink(sink)))(self)

describe("sync behaviour, stores in memory (TestClock)", () => {
  layer(Layer.empty)((it) => {
    syncBehaviour(
      it,
      memoryProvide((sink) => sink)
    )
  })
})

// A sink that cannot read its stored versions all at once (a custom one, say): the plan looks
// them up batch by batch and pages the stored keys for what is gone.
describe("sync behaviour, a sink in memory without storedVersions (TestClock)", () => {
  layer(Layer.empty)((it) => {
    syncBehaviour(
      it,
      memoryProvide(({ storedVersions: _, ...sink }) => sink)
    )
  })
})

class TestUrl extends Context.Tag("test/TestUrl")<TestUrl, string>() {}

// Each test builds `Tidemark.layerPg` itself (the database from settings, migrated), on one database per file.
layer(Layer.scoped(TestUrl, TestDatabase.freshDatabase("sync_behaviour")), { excludeTestServices: true })(
  "sync behaviour, PostgreSQL (TestClock)",
  (it) => {
    const provide: Provide<TestUrl> = (self, wrapSink) =>
      Effect.flatMap(TestUrl, (url) =>
        runOn(Tidemark.layerPg.pipe(Layer.orDie, Layer.provide(TestDatabase.settingsFor(url))), (context) => {
          const { sql } = Context.get(context, MainDb)
          return {
            stored: (sourceId) =>
              sql<{ key: string; version: string }>`
                SELECT key, version FROM tidemark.documents WHERE source_id = ${sourceId}`.pipe(
                Effect.map((rows) => Object.fromEntries(rows.map((r) => [r.key, r.version]))),
                Effect.orDie
              ),
            lastOp: (sourceId) =>
              sql<{ status: string; restarts: number }>`
                SELECT status, restarts FROM tidemark.ops WHERE source_id = ${sourceId} ORDER BY id DESC LIMIT 1`.pipe(
                Effect.map((rows) => rows[0]),
                Effect.orDie
              )
          }
        })(wrapSink)(self)
      ).pipe(Effect.provide(TestContext.TestContext))
    syncBehaviour(it, provide)
  }
)
