/**
 * Where maintenance debt lives: one row per (source, kind). Recording bumps
 * the revision (a changed source owes its kinds again); a payer marks a kind
 * begun, then paid up to the revision it saw when it began (compare and set:
 * if the revision moved meanwhile, the debt stays owed and the payer may run
 * once more), or failed with the time of its next attempt. Times are the
 * store's own clock. In-memory and PostgreSQL versions, one behaviour suite.
 */
import { Context, type Duration, type Effect } from "effect"
import type { StoreError } from "../db/StoreError.js"
import type { DebtRow, Kind } from "./Debt.js"

export type PaidOutcome =
  /** Nothing was recorded meanwhile: the debt is paid. */
  | "paid"
  /** The revision moved during the run: still owed. */
  | "moved"

export interface DebtStoreShape {
  /** Records that `kinds` of the source are owed again, after `changed` rows changed (its own transaction). */
  readonly record: (sourceId: string, kinds: ReadonlyArray<Kind>, changed?: number) => Effect.Effect<void, StoreError>
  /** Every debt row, of one source or of all. */
  readonly list: (sourceId?: string) => Effect.Effect<ReadonlyArray<DebtRow>, StoreError>
  /** Owed and due now (not backed off), of one source or of all. */
  readonly due: (sourceId?: string) => Effect.Effect<ReadonlyArray<DebtRow>, StoreError>
  /** Marks a run begun by `payer` (a rerun counts as one); returns the revision it covers. */
  readonly begin: (sourceId: string, kind: Kind, payer: string, rerun: boolean) => Effect.Effect<number, StoreError>
  /** Marks the kind paid up to `revision` if nothing was recorded since. */
  readonly paid: (sourceId: string, kind: Kind, revision: number) => Effect.Effect<PaidOutcome, StoreError>
  /** Records a failed run: one attempt more, the next not before `retryAfter`. */
  readonly failed: (
    sourceId: string,
    kind: Kind,
    error: string,
    retryAfter: Duration.Duration
  ) => Effect.Effect<void, StoreError>
  /**
   * Sources with debt due and nobody paying it: no live `maintain:` lease, and no
   * payer begun or scheduled in the last `quiet` (one on its way).
   */
  readonly unattended: (quiet: Duration.Duration) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /** Marks the sources' owed debt as having a payer on its way (`scheduledBy`). */
  readonly schedule: (sourceIds: ReadonlyArray<string>, scheduledBy: string) => Effect.Effect<void, StoreError>
}

export class DebtStore extends Context.Tag("tidemark/DebtStore")<DebtStore, DebtStoreShape>() {}
