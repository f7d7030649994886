/**
 * Sources and ops in memory, for simulations under `TestClock`. Behaves like
 * the PostgreSQL store (the sync behaviour suite runs on both): each write
 * runs the fence first and changes nothing when it fails. Banked counts come
 * from the in-memory checkpoint store, as `ops.banked` is kept by the
 * PostgreSQL checkpoint store's flushes. Removing a source removes what this
 * store holds of it (the source, its ops and their banked items): the other
 * in-memory stores keep their own state, so their counts in `SourceContents`
 * are 0 here.
 */
import { Context, Effect, Layer, Ref } from "effect"
import { MemoryCheckpoints } from "../checkpoint/MemoryCheckpointStore.js"
import { DebtStore } from "../maintenance/DebtStore.js"
import type { Target } from "../source/Source.js"
import {
  type OpenOp,
  OpsStore,
  SourceConflict,
  type SourceContents,
  type SourceRecord,
  UnknownSource
} from "./OpsStore.js"

export interface StoredSource extends SourceRecord {
  readonly watermark: unknown
}

export interface StoredOp {
  readonly id: number
  readonly sourceId: string
  readonly base: unknown
  readonly target: Target | null
  readonly status: "open" | "done"
  readonly token: number
  readonly restarts: number
  readonly planned: number | null
}

interface State {
  readonly sources: ReadonlyMap<string, StoredSource>
  readonly ops: ReadonlyMap<number, StoredOp>
  readonly lastOpId: number
}

/** What the store holds, for tests to look at. */
export class MemoryOps extends Context.Tag("tidemark/MemoryOps")<
  MemoryOps,
  {
    readonly snapshot: Effect.Effect<{
      readonly sources: ReadonlyMap<string, StoredSource>
      readonly ops: ReadonlyArray<StoredOp>
    }>
  }
>() {}

export const layer: Layer.Layer<OpsStore | MemoryOps, never, MemoryCheckpoints | DebtStore> = Layer.effectContext(
  Effect.gen(function* () {
    const checkpoints = yield* MemoryCheckpoints
    const debt = yield* DebtStore
    const state = yield* Ref.make<State>({ sources: new Map(), ops: new Map(), lastOpId: 0 })
    const updateOp = (opId: number, f: (op: StoredOp) => StoredOp) =>
      Ref.update(state, (s) => {
        const op = s.ops.get(opId)
        return op === undefined ? s : { ...s, ops: new Map(s.ops).set(opId, f(op)) }
      })
    const contentsOf = (sourceId: string) =>
      Effect.gen(function* () {
        const s = yield* Ref.get(state)
        const source = s.sources.get(sourceId)
        if (source === undefined) return yield* new UnknownSource({ sourceId })
        const ops = [...s.ops.values()].filter((op) => op.sourceId === sourceId)
        const banked = yield* Effect.forEach(ops, (op) => checkpoints.bankedCount(op.id))
        return {
          kind: source.kind,
          root: source.root,
          sink: source.sink,
          documents: 0,
          entries: 0,
          jsonlFiles: 0,
          ops: ops.length,
          bankedItems: banked.reduce((a, b) => a + b, 0),
          itemErrors: 0,
          runState: 0,
          maintenanceDebt: 0,
          links: 0
        } satisfies SourceContents
      })
    const openOf = (s: State, sourceId: string) =>
      [...s.ops.values()].find((op) => op.sourceId === sourceId && op.status === "open")

    const store = OpsStore.of({
      ensureSource: (source, fence) =>
        Effect.zipRight(
          fence,
          Effect.flatMap(Ref.get(state), (s) => {
            const existing = s.sources.get(source.id)
            if (existing !== undefined && (existing.kind !== source.kind || existing.root !== source.root)) {
              return Effect.fail(
                new SourceConflict({ sourceId: source.id, existingRoot: existing.root, existingKind: existing.kind })
              )
            }
            return Ref.set(state, {
              ...s,
              sources: new Map(s.sources).set(source.id, { ...source, watermark: existing?.watermark ?? null })
            })
          })
        ),
      openOrResume: (sourceId, token, fence) =>
        Effect.zipRight(
          fence,
          Effect.gen(function* () {
            const s = yield* Ref.get(state)
            const open = openOf(s, sourceId)
            if (open !== undefined) {
              const resumed = { ...open, restarts: open.restarts + 1, token }
              yield* Ref.set(state, { ...s, ops: new Map(s.ops).set(open.id, resumed) })
              return {
                id: open.id,
                banked: yield* checkpoints.bankedCount(open.id),
                restarts: resumed.restarts,
                resumed: true,
                base: open.base,
                target: open.target
              } satisfies OpenOp
            }
            const id = s.lastOpId + 1
            const base = s.sources.get(sourceId)?.watermark ?? null
            const op: StoredOp = { id, sourceId, base, target: null, status: "open", token, restarts: 0, planned: null }
            yield* Ref.set(state, { ...s, ops: new Map(s.ops).set(id, op), lastOpId: id })
            return { id, banked: 0, restarts: 0, resumed: false, base, target: null } satisfies OpenOp
          })
        ),
      recordTarget: (opId, target, fence) =>
        Effect.zipRight(
          fence,
          updateOp(opId, (op) => ({ ...op, target }))
        ),
      recordPlanned: (opId, planned, fence) =>
        Effect.zipRight(
          fence,
          updateOp(opId, (op) => ({ ...op, planned }))
        ),
      finish: (sourceId, opId, watermark, fence) =>
        Effect.zipRight(
          fence,
          Effect.zipRight(
            Ref.update(state, (s) => {
              const source = s.sources.get(sourceId)
              const op = s.ops.get(opId)
              return {
                ...s,
                sources: source === undefined ? s.sources : new Map(s.sources).set(sourceId, { ...source, watermark }),
                ops: op === undefined ? s.ops : new Map(s.ops).set(opId, { ...op, status: "done" })
              }
            }),
            Effect.zipRight(checkpoints.drop(opId), debt.record(sourceId, ["purge"]).pipe(Effect.orDie))
          )
        ),
      watermarkOf: (sourceId) => Effect.map(Ref.get(state), (s) => s.sources.get(sourceId)?.watermark ?? null),
      contentsOf: (sourceId) => contentsOf(sourceId),
      removeSource: (sourceId, fence) =>
        Effect.zipRight(
          fence,
          Effect.tap(contentsOf(sourceId), () =>
            Effect.flatMap(
              Ref.modify(state, (s) => {
                const mine = [...s.ops.values()].filter((op) => op.sourceId === sourceId)
                const sources = new Map(s.sources)
                sources.delete(sourceId)
                const ops = new Map(s.ops)
                for (const op of mine) ops.delete(op.id)
                return [mine, { ...s, sources, ops }]
              }),
              (removed) => Effect.forEach(removed, (op) => checkpoints.drop(op.id), { discard: true })
            )
          )
        )
    })
    return Context.make(OpsStore, store).pipe(
      Context.add(MemoryOps, {
        snapshot: Effect.map(Ref.get(state), (s) => ({ sources: s.sources, ops: [...s.ops.values()] }))
      })
    )
  })
)
