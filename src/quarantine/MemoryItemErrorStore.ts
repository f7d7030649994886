/** Item errors in memory, for simulations under `TestClock`; behaves like the PostgreSQL store. */
import { Clock, Effect, Layer, Ref } from "effect"
import { ItemErrorStore, type RecordedError } from "./ItemErrorStore.js"

interface Stored extends RecordedError {
  readonly lastAt: number
}

export const layer: Layer.Layer<ItemErrorStore> = Layer.effect(
  ItemErrorStore,
  Effect.map(Ref.make(new Map<string, ReadonlyMap<string, Stored>>()), (sources) =>
    ItemErrorStore.of({
      keys: (sourceId) => Effect.map(Ref.get(sources), (all) => [...(all.get(sourceId)?.keys() ?? [])]),
      record: (sourceId, change, fence) =>
        Effect.zipRight(
          fence,
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Ref.update(sources, (all) => {
              const errors = new Map(all.get(sourceId))
              for (const key of change.resolved) errors.delete(key)
              for (const row of change.errors) {
                const attempts = (errors.get(row.key)?.attempts ?? 0) + 1
                errors.set(row.key, { ...row, attempts, lastAt: now })
              }
              return new Map(all).set(sourceId, errors)
            })
          )
        ),
      recent: (sourceId, limit) =>
        Effect.map(Ref.get(sources), (all) =>
          [...(all.get(sourceId)?.values() ?? [])]
            .sort((a, b) => b.lastAt - a.lastAt || (a.key < b.key ? -1 : 1))
            .slice(0, limit)
            .map(({ key, version, error, attempts }) => ({ key, version, error, attempts }))
        )
    })
  )
)
