/** Banked items in memory, for simulating the flush policy under TestClock. */
import { Effect, Layer, Ref } from "effect"
import { CheckpointStore } from "./CheckpointStore.js"

export const layer = Layer.effect(
  CheckpointStore,
  Effect.map(Ref.make(new Map<number, Map<string, string>>()), (ops) =>
    CheckpointStore.of({
      append: (opId, items) =>
        Ref.update(ops, (all) => {
          const banked = new Map(all.get(opId))
          for (const item of items) banked.set(item.key, item.version)
          return new Map(all).set(opId, banked)
        }),
      bankedAmong: (opId, keys) =>
        Effect.map(Ref.get(ops), (all) => {
          const banked = all.get(opId)
          return new Map(keys.flatMap((key) => (banked?.has(key) ? [[key, banked.get(key)!] as const] : [])))
        })
    })
  )
)
