/**
 * Sources and ops in the database. An op is one resumable attempt to bring a
 * source up to date; at most one is open per source. Every write here is
 * fenced by the lease, like the data writes.
 */
import { Data, Effect } from "effect"
import { MainDb, transaction } from "../db/Database.js"
import type { Target } from "../source/Source.js"

export class SourceConflict extends Data.TaggedError("SourceConflict")<{
  readonly sourceId: string
  readonly existingRoot: string
  readonly existingKind: string
}> {
  override get message() {
    return `source ${this.sourceId} already syncs ${this.existingKind} ${this.existingRoot}`
  }
  get hint() {
    return "pick another name with --source"
  }
}

export interface OpenOp {
  readonly id: number
  readonly banked: number
  readonly restarts: number
  readonly resumed: boolean
  /** The source's watermark when the op opened: where its plan starts from. */
  readonly base: unknown
  /** The target the op pinned, or null when it has none yet. */
  readonly target: Target | null
}

const pinned = (target: unknown): Target | null =>
  target !== null && typeof target === "object" && Object.keys(target).length > 0 ? (target as Target) : null

export const ensureSource = (sourceId: string, kind: string, root: string) =>
  Effect.flatMap(MainDb, ({ sql }) =>
    Effect.gen(function* () {
      const [row] = yield* sql<{ kind: string; root: string }>`
        INSERT INTO tidemark.sources AS s (id, kind, root) VALUES (${sourceId}, ${kind}, ${root})
        ON CONFLICT (id) DO UPDATE SET updated_at = now()
        RETURNING kind, root`
      if (row !== undefined && (row.kind !== kind || row.root !== root)) {
        return yield* new SourceConflict({ sourceId, existingRoot: row.root, existingKind: row.kind })
      }
    })
  )

export const openOrResume = <E>(sourceId: string, token: number, fence: Effect.Effect<void, E>) =>
  Effect.flatMap(MainDb, ({ sql }) =>
    transaction(sql)(
      Effect.gen(function* () {
        yield* fence
        const [open] = yield* sql<{ id: string; banked: string; restarts: number; base: unknown; target: unknown }>`
          UPDATE tidemark.ops SET restarts = restarts + 1, fencing_token = ${token}, updated_at = now()
           WHERE source_id = ${sourceId} AND status = 'open'
          RETURNING id, banked, restarts, base, target`
        if (open !== undefined) {
          return {
            id: Number(open.id),
            banked: Number(open.banked),
            restarts: open.restarts,
            resumed: true,
            base: open.base,
            target: pinned(open.target)
          } satisfies OpenOp
        }
        const [created] = yield* sql<{ id: string; base: unknown }>`
          INSERT INTO tidemark.ops (source_id, base, target, fencing_token)
          SELECT ${sourceId}, watermark, '{}'::jsonb, ${token} FROM tidemark.sources WHERE id = ${sourceId}
          RETURNING id, base`
        return {
          id: Number(created!.id),
          banked: 0,
          restarts: 0,
          resumed: false,
          base: created!.base,
          target: null
        } satisfies OpenOp
      })
    )
  )

/** Pins the op's target (a new op's, or a resumed op's that had to move on). */
export const recordTarget = <E>(opId: number, target: Target, fence: Effect.Effect<void, E>) =>
  Effect.flatMap(MainDb, ({ sql }) =>
    transaction(sql)(
      Effect.zipRight(
        fence,
        sql`UPDATE tidemark.ops SET target = ${JSON.stringify(target)}::jsonb, updated_at = now() WHERE id = ${opId}`
      )
    )
  ).pipe(Effect.asVoid)

/** The source's watermark: what its last finished sync recorded (null before the first). */
export const watermarkOf = (sourceId: string) =>
  Effect.flatMap(MainDb, ({ sql }) =>
    Effect.map(
      sql<{ watermark: unknown }>`SELECT watermark FROM tidemark.sources WHERE id = ${sourceId}`,
      (rows) => rows[0]?.watermark ?? null
    )
  )

/** Records what the op's plan found to do: the items already banked plus those left. */
export const recordPlanned = (opId: number, planned: number) =>
  Effect.flatMap(
    MainDb,
    ({ sql }) => sql`UPDATE tidemark.ops SET planned = ${planned}, updated_at = now() WHERE id = ${opId}`
  ).pipe(Effect.asVoid)

/** Keys of the source's items that have a recorded error. */
export const recordedErrorKeys = (sourceId: string) =>
  Effect.flatMap(MainDb, ({ sql }) =>
    Effect.map(sql<{ key: string }>`SELECT key FROM tidemark.item_errors WHERE source_id = ${sourceId}`, (rows) =>
      rows.map((r) => r.key)
    )
  )

/** Advances the watermark, closes the op and drops its banked items, in one fenced transaction. */
export const finish = <E>(sourceId: string, opId: number, watermark: unknown, fence: Effect.Effect<void, E>) =>
  Effect.flatMap(MainDb, ({ sql }) =>
    transaction(sql)(
      Effect.gen(function* () {
        yield* fence
        yield* sql`UPDATE tidemark.sources SET watermark = ${JSON.stringify(watermark)}::jsonb, updated_at = now() WHERE id = ${sourceId}`
        yield* sql`UPDATE tidemark.ops SET status = 'done', completed_at = now(), updated_at = now() WHERE id = ${opId}`
        yield* sql`DELETE FROM tidemark.op_items WHERE op_id = ${opId}`
      })
    )
  )
