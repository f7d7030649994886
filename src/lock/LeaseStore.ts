/**
 * Where leases live. Small on purpose: the timing logic (LeaseLock) runs
 * against this interface, so it can be simulated under `TestClock` with the
 * in-memory store and run for real with the PostgreSQL one; one contract
 * suite holds both to the same behaviour. Every time comparison is made by
 * the store's own clock.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Context, type Duration, type Effect, type Option } from "effect"
import type { FencedOut, HolderInfo } from "./errors.js"

/** A lease as the store reports it; times in milliseconds by the store's clock (plain numbers: JSON-friendly). */
export interface LeaseRow extends HolderInfo {
  readonly name: string
  readonly token: number
  /** Since it was granted to this holder. */
  readonly ageMillis: number
  readonly sinceHeartbeatMillis: number
  /** Negative once expired. */
  readonly expiresInMillis: number
}

/** What a renewal found: still ours (extended), someone else's now, or nobody's (released by someone else). */
export type RenewOutcome = "renewed" | "taken-over" | "released"

export type AcquireResult =
  { readonly _tag: "Granted"; readonly token: number } | { readonly _tag: "Busy"; readonly current: LeaseRow }

export interface LeaseStoreShape {
  /** Grants the lease if it is free or expired, with a new, higher token. One atomic step. */
  readonly tryAcquire: (
    name: string,
    holder: HolderInfo,
    ttl: Duration.Duration
  ) => Effect.Effect<AcquireResult, SqlError>
  /**
   * Grants the lease to `holder` with a new token if it is still exactly
   * (`from.holder`, `from.token`)'s, expired or not: for a holder known to be dead.
   */
  readonly takeOver: (
    name: string,
    from: { readonly holder: string; readonly token: number },
    holder: HolderInfo,
    ttl: Duration.Duration
  ) => Effect.Effect<Option.Option<number>, SqlError>
  /** Extends the lease if it is still (holder, token)'s; otherwise says whose it is now. */
  readonly renew: (
    name: string,
    holder: string,
    token: number,
    ttl: Duration.Duration
  ) => Effect.Effect<RenewOutcome, SqlError>
  /** Removes the lease if it is still (holder, token)'s; false when it is not. */
  readonly release: (name: string, holder: string, token: number) => Effect.Effect<boolean, SqlError>
  readonly list: Effect.Effect<ReadonlyArray<LeaseRow>, SqlError>
  /** The lease's row, expired or not, if any. */
  readonly find: (name: string) => Effect.Effect<Option.Option<LeaseRow>, SqlError>
  /** Removes the lease whoever holds it (an operator's override); returns what it removed. */
  readonly forceRelease: (name: string) => Effect.Effect<Option.Option<LeaseRow>, SqlError>
  /**
   * Fails with `FencedOut` unless `token` is still the lease's. Run it inside
   * the data write's transaction: it also makes a takeover wait for that
   * transaction, so no write of an old holder can commit after a new grant.
   * With `idleBound`, the server ends the transaction if its client falls silent
   * for that long (a frozen process, a paused machine): otherwise its row lock
   * would hold every takeover back for as long as the client stays frozen.
   */
  readonly fence: (
    name: string,
    token: number,
    idleBound?: Duration.Duration
  ) => Effect.Effect<void, FencedOut | SqlError>
}

export class LeaseStore extends Context.Tag("tidemark/LeaseStore")<LeaseStore, LeaseStoreShape>() {}
