/**
 * A sync's run state: restored when the sync starts (counts carry on across
 * restarts of the same op; the measured rate carries on across ops, so the
 * first ETA after a restart is already calibrated), then sampled from the
 * sync's progress every `sampleEvery`. Phase changes are written at once; the
 * rest by the periodic flush.
 */
import { Clock, Duration, Effect, Option, Ref } from "effect"
import * as RunState from "../state/RunState.js"
import type { Target } from "../source/Source.js"
import type { OpenOp } from "../ops/OpsStore.js"
import type { Progress } from "./Progress.js"

export interface Tracking {
  readonly runState: RunState.RunState
  /** Records the finished op: final counts, phase "done", written at once. */
  readonly complete: Effect.Effect<void>
}

const sampleEvery = Duration.seconds(1)

export const track = Effect.fn("RunStateTracking.track")(function* (options: {
  readonly sourceId: string
  readonly op: OpenOp
  readonly target: Target
  readonly progress: Ref.Ref<Progress>
  readonly policy?: RunState.RunStatePolicy
}) {
  const { sourceId, op, target, progress } = options
  const now = yield* Clock.currentTimeMillis
  const restored = yield* RunState.restore(sourceId).pipe(
    Effect.catchAll((error) =>
      Effect.as(
        Effect.logWarning(`run state of ${sourceId} could not be read, starting afresh: ${error.message}`),
        Option.none<RunState.RestoredRunState>()
      )
    )
  )
  const previous = Option.flatMap(restored, (r) => r.identity)
  const sameOp = Option.isSome(previous) && previous.value.opId === op.id
  const base = sameOp
    ? Option.getOrElse(
        Option.flatMap(restored, (r) => r.counts),
        () => RunState.freshCounts
      )
    : RunState.freshCounts
  const runState = yield* RunState.make(
    sourceId,
    {
      identity: { opId: op.id, target, phase: "planning", startedAt: sameOp ? previous.value.startedAt : now },
      counts: { ...base, restarts: op.restarts },
      rate: Option.getOrElse(
        Option.flatMap(restored, (r) => r.rate),
        () => RunState.freshRate
      )
    },
    options.policy
  )
  // The op opened (or resumed): written at once.
  yield* runState.flush

  let last = { at: now, banked: 0, bytes: 0 }
  let completed = false
  const sample = Effect.gen(function* () {
    if (completed) return
    const p = yield* Ref.get(progress)
    const at = yield* Clock.currentTimeMillis
    const { identity, counts, rate } = yield* runState.get
    const done = op.banked + p.banked
    const next: RunState.Counts = {
      // A first import still listing knows only what it found so far: a floor, until it ends.
      planned: Math.max(p.listing ? op.banked + p.toImport : p.planned, done),
      done,
      failed: base.failed + p.failed,
      bytes: base.bytes + p.bytes,
      restarts: op.restarts,
      lastProgressAt: done !== counts.done ? at : counts.lastProgressAt
    }
    const moving = p.phase === "importing" || p.phase === "deleting"
    const nextRate = moving
      ? RunState.nextRate(rate, p.banked - last.banked, p.bytes - last.bytes, (at - last.at) / 1000)
      : rate
    last = { at, banked: p.banked, bytes: p.bytes }
    if (JSON.stringify(next) !== JSON.stringify(counts) || nextRate !== rate) {
      yield* runState.update((value) => ({ ...value, counts: next, rate: nextRate }))
    }
    if (p.phase !== identity.phase) yield* runState.updateIdentity((i) => ({ ...i, phase: p.phase }))
  })
  yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(sampleEvery), sample)))
  // Runs before the run state's own final flush (finalizers run last-added first).
  yield* Effect.addFinalizer(() => sample)

  return {
    runState,
    complete: Effect.zipRight(
      sample,
      Effect.suspend(() => {
        completed = true
        return runState.updateIdentity((i) => ({ ...i, phase: "done" }))
      })
    )
  } satisfies Tracking
})
