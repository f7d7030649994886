/** Run state in memory, for simulating the flush policy under TestClock. */
import { Effect, Layer, Option, Ref } from "effect"
import { type RunStateGroups, RunStateStore } from "./RunStateStore.js"

export const layer = Layer.effect(
  RunStateStore,
  Effect.map(Ref.make(new Map<string, RunStateGroups>()), (rows) =>
    RunStateStore.of({
      load: (sourceId) => Effect.map(Ref.get(rows), (all) => Option.fromNullable(all.get(sourceId))),
      save: (sourceId, groups) => Ref.update(rows, (all) => new Map(all).set(sourceId, structuredClone(groups)))
    })
  )
)
