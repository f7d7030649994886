/**
 * A sink in memory: each source's items by key with their source version and
 * content hash. For simulations under `TestClock` and for tests of one's own
 * sync rules; it behaves as the documents sink does toward the sync (the sync
 * behaviour suite runs on both). `reject` makes it refuse items, as a sink may.
 */
import { Context, Effect, Layer, Ref } from "effect"
import { documentKinds } from "../maintenance/Debt.js"
import { DebtStore } from "../maintenance/DebtStore.js"
import { Sink } from "./Sink.js"
import type { ReadItem } from "../source/Source.js"
import { decodeUtf8 } from "../source/Source.js"

export interface StoredItem {
  readonly version: string
  readonly contentHash: string
  readonly content: string
}

/** The items stored, for tests to look at. */
export class MemorySink extends Context.Tag("tidemark/MemorySink")<
  MemorySink,
  { readonly stored: (sourceId: string) => Effect.Effect<ReadonlyMap<string, StoredItem>> }
>() {}

export interface MemorySinkOptions {
  /** Why the sink refuses an item, or undefined to store it. */
  readonly reject?: (item: ReadItem) => string | undefined
}

export const layer = (options: MemorySinkOptions = {}): Layer.Layer<Sink | MemorySink, never, DebtStore> =>
  Layer.effectContext(
    Effect.map(
      Effect.all([Ref.make(new Map<string, ReadonlyMap<string, StoredItem>>()), DebtStore]),
      ([sources, debt]) => {
        const of = (sourceId: string) => Effect.map(Ref.get(sources), (all) => all.get(sourceId) ?? new Map())
        const sink = Sink.of({
          name: "memory",
          differing: (sourceId, items) =>
            Effect.map(of(sourceId), (stored) =>
              items.flatMap((item) => {
                const current = stored.get(item.key)?.version ?? null
                return current === item.version ? [] : [{ item, stored: current }]
              })
            ),
          storedVersions: (sourceId) =>
            Effect.map(
              of(sourceId),
              (stored) =>
                new Map(
                  [...stored.entries()]
                    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
                    .map(([key, item]) => [key, item.version] as const)
                )
            ),
          count: (sourceId) => Effect.map(of(sourceId), (stored) => stored.size),
          keysAfter: (sourceId, after, limit) =>
            Effect.map(of(sourceId), (stored) =>
              [...stored.keys()]
                .filter((key) => key > after)
                .sort()
                .slice(0, limit)
            ),
          write: (sourceId, batch, fence) =>
            Effect.zipRight(
              fence,
              Effect.tap(
                Ref.modify(sources, (all) => {
                  const stored = new Map(all.get(sourceId))
                  const rejected = []
                  for (const item of batch.items) {
                    const reason = options.reject?.(item)
                    if (reason !== undefined) rejected.push({ key: item.key, version: item.version, error: reason })
                    else
                      stored.set(item.key, {
                        version: item.version,
                        contentHash: item.contentHash,
                        content: decodeUtf8(item.content)
                      })
                  }
                  for (const key of batch.deletes) stored.delete(key)
                  return [rejected, new Map(all).set(sourceId, stored)]
                }),
                () =>
                  batch.items.length > 0 || batch.deletes.length > 0
                    ? debt.record(sourceId, documentKinds, batch.items.length + batch.deletes.length).pipe(Effect.orDie)
                    : Effect.void
              )
            )
        })
        return Context.make(Sink, sink).pipe(Context.add(MemorySink, { stored: of }))
      }
    )
  )
