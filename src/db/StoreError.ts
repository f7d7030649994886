/**
 * What a store adapter fails with: its own error, naming the store and the
 * operation, with the driver's failure as the cause. Ports never let the
 * driver's `SqlError` through, so a caller handles one error per store; retry
 * decisions still see the cause (`Transient.classify` follows the chain).
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Data, Effect } from "effect"
import { shortReason } from "./Transient.js"

export class StoreError extends Data.TaggedError("StoreError")<{
  readonly store: string
  readonly operation: string
  readonly cause: unknown
}> {
  override get message() {
    return `${this.store}: ${this.operation} failed: ${shortReason(this.cause)}`
  }
}

/** Turns the driver's failures of `self` into the caller's own error; other failures (a fence's) pass unchanged. */
export const mapSqlError =
  <X>(f: (cause: SqlError) => X) =>
  <A, E, R>(self: Effect.Effect<A, E | SqlError, R>): Effect.Effect<A, Exclude<E, SqlError> | X, R> =>
    Effect.catchIf(
      self,
      (error): error is SqlError => (error as { readonly _tag?: unknown })._tag === "SqlError",
      (cause) => Effect.fail(f(cause))
    ) as Effect.Effect<A, Exclude<E, SqlError> | X, R>

/** Wraps the driver's failures of `self` into a `StoreError` of `store`. */
export const wrapSql = (store: string, operation: string) =>
  mapSqlError((cause) => new StoreError({ store, operation, cause }))
