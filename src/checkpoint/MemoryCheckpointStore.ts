/**
 * Banked items in memory, for simulations under `TestClock`. `MemoryCheckpoints`
 * is the table itself: the in-memory ops store counts an op's banked items and
 * drops them when the op finishes, as the PostgreSQL stores do in SQL.
 */
import { Context, Effect, Layer, Ref } from "effect"
import { CheckpointStore } from "./CheckpointStore.js"

export class MemoryCheckpoints extends Context.Tag("tidemark/MemoryCheckpoints")<
  MemoryCheckpoints,
  {
    /** How many items the op has banked. */
    readonly bankedCount: (opId: number) => Effect.Effect<number>
    /** Drops the op's banked items (it finished). */
    readonly drop: (opId: number) => Effect.Effect<void>
  }
>() {}

export const layer: Layer.Layer<CheckpointStore | MemoryCheckpoints> = Layer.effectContext(
  Effect.map(Ref.make(new Map<number, ReadonlyMap<string, string>>()), (ops) =>
    Context.make(
      CheckpointStore,
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
    ).pipe(
      Context.add(MemoryCheckpoints, {
        bankedCount: (opId) => Effect.map(Ref.get(ops), (all) => all.get(opId)?.size ?? 0),
        drop: (opId) =>
          Ref.update(ops, (all) => {
            const next = new Map(all)
            next.delete(opId)
            return next
          })
      })
    )
  )
)
