/** The source registry in memory, for simulations; the contract suite holds it to the PostgreSQL one. */
import { Effect, Layer, Option, Ref } from "effect"
import { type RecordedSource, SourceExists, SourceRegistry } from "./SourceRegistry.js"

export const layer = Layer.effect(
  SourceRegistry,
  Effect.map(Ref.make(new Map<string, RecordedSource>()), (state) =>
    SourceRegistry.of({
      add: (source, options) =>
        Effect.flatMap(Ref.get(state), (sources) =>
          sources.has(source.name) && options?.replace !== true
            ? Effect.fail(new SourceExists({ name: source.name }))
            : Ref.update(state, (current) => {
                const createdAt = current.get(source.name)?.createdAt ?? new Date(0)
                return new Map(current).set(source.name, { ...source, createdAt })
              })
        ),
      get: (name) => Effect.map(Ref.get(state), (sources) => Option.fromNullable(sources.get(name))),
      list: Effect.map(Ref.get(state), (sources) =>
        [...sources.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      ),
      remove: (name) =>
        Ref.modify(state, (sources) => {
          if (!sources.has(name)) return [false, sources]
          const next = new Map(sources)
          next.delete(name)
          return [true, next]
        })
    })
  )
)
