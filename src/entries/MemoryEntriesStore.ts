/**
 * Entries and stream checkpoints in memory, for simulations under `TestClock`.
 * Behaves like the PostgreSQL store: a write runs the fence first and changes
 * nothing when it fails; an identity met again is the same entry.
 */
import { Context, Effect, Layer, Ref } from "effect"
import { entryKinds } from "../maintenance/Debt.js"
import { DebtStore } from "../maintenance/DebtStore.js"
import { EntriesStore, type NewEntry, type Stream } from "./EntriesStore.js"

export interface MemoryEntry extends NewEntry {
  readonly present: boolean
}

interface State {
  readonly streams: ReadonlyMap<string, ReadonlyMap<number, Stream>>
  readonly entries: ReadonlyMap<string, ReadonlyMap<number, ReadonlyMap<string, MemoryEntry>>>
  readonly lastStream: number
}

/** What the store holds, for tests to look at. */
export class MemoryEntries extends Context.Tag("tidemark/MemoryEntries")<
  MemoryEntries,
  { readonly entries: (sourceId: string, stream: number) => Effect.Effect<ReadonlyArray<MemoryEntry>> }
>() {}

export const layer: Layer.Layer<EntriesStore | MemoryEntries, never, DebtStore> = Layer.effectContext(
  Effect.gen(function* () {
    const debt = yield* DebtStore
    const state = yield* Ref.make<State>({ streams: new Map(), entries: new Map(), lastStream: 0 })
    const entriesOf = (s: State, sourceId: string, stream: number) =>
      s.entries.get(sourceId)?.get(stream) ?? new Map<string, MemoryEntry>()
    const withEntries = (
      s: State,
      sourceId: string,
      stream: number,
      entries: ReadonlyMap<string, MemoryEntry>
    ): State => ({
      ...s,
      entries: new Map(s.entries).set(sourceId, new Map(s.entries.get(sourceId)).set(stream, entries))
    })
    const store = EntriesStore.of({
      streams: (sourceId) => Effect.map(Ref.get(state), (s) => [...(s.streams.get(sourceId)?.values() ?? [])]),
      present: (sourceId, stream) =>
        Effect.map(Ref.get(state), (s) =>
          [...entriesOf(s, sourceId, stream).values()]
            .filter((e) => e.present)
            .sort((a, b) => a.position - b.position)
            .map((e) => ({ identity: e.identity, position: e.position, lineHash: e.lineHash }))
        ),
      write: (sourceId, write, fence) =>
        Effect.zipLeft(
          Effect.zipRight(
            fence,
            Ref.modify(state, (s) => {
              const stream = write.stream ?? s.lastStream + 1
              const streams = new Map(s.streams.get(sourceId)).set(stream, { ...write.checkpoint, stream })
              const entries = new Map(entriesOf(s, sourceId, stream))
              for (const m of write.moved ?? []) {
                const e = entries.get(m.identity)
                if (e !== undefined)
                  entries.set(m.identity, { ...e, position: m.position, byteOffset: m.byteOffset, present: true })
              }
              for (const identity of write.absent ?? []) {
                const e = entries.get(identity)
                if (e !== undefined) entries.set(identity, { ...e, present: false })
              }
              for (const e of write.entries) {
                const existing = entries.get(e.identity)
                entries.set(
                  e.identity,
                  existing === undefined
                    ? { ...e, present: true }
                    : { ...existing, position: e.position, byteOffset: e.byteOffset, present: true }
                )
              }
              const next = withEntries(
                {
                  ...s,
                  streams: new Map(s.streams).set(sourceId, streams),
                  lastStream: Math.max(s.lastStream, stream)
                },
                sourceId,
                stream,
                entries
              )
              return [stream, next]
            })
          ),
          debt.record(sourceId, entryKinds, write.entries.length).pipe(Effect.orDie)
        ),
      markGone: (sourceId, streams, fence) =>
        Effect.zipRight(
          fence,
          Ref.update(state, (s) => {
            const mine = new Map(s.streams.get(sourceId))
            for (const id of streams) {
              const stream = mine.get(id)
              if (stream !== undefined) mine.set(id, { ...stream, gone: true })
            }
            return { ...s, streams: new Map(s.streams).set(sourceId, mine) }
          })
        ),
      remove: (sourceId, streams, fence) =>
        Effect.zipRight(
          fence,
          Ref.modify(state, (s) => {
            const mine = new Map(s.streams.get(sourceId))
            const entries = new Map(s.entries.get(sourceId))
            let deleted = 0
            for (const id of streams) {
              deleted += entries.get(id)?.size ?? 0
              mine.delete(id)
              entries.delete(id)
            }
            return [
              deleted,
              {
                ...s,
                streams: new Map(s.streams).set(sourceId, mine),
                entries: new Map(s.entries).set(sourceId, entries)
              }
            ]
          })
        ),
      count: (sourceId, stream) =>
        Effect.map(Ref.get(state), (s) => {
          const all = s.entries.get(sourceId) ?? new Map()
          const streams = stream === undefined ? [...all.values()] : [all.get(stream) ?? new Map()]
          return streams.reduce((n, entries) => n + [...entries.values()].filter((e) => e.present).length, 0)
        })
    })
    return Context.make(EntriesStore, store).pipe(
      Context.add(MemoryEntries, {
        entries: (sourceId, stream) =>
          Effect.map(Ref.get(state), (s) =>
            [...entriesOf(s, sourceId, stream).values()].sort((a, b) => a.position - b.position)
          )
      })
    )
  })
)
