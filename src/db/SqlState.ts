/**
 * The SQLSTATE codes tidemark acts on, read off a failed statement (the
 * driver's error is the SqlError's cause).
 */
import { SqlError } from "@effect/sql/SqlError"

export const uniqueViolation = "23505"
/** A table that is not there (a database tidemark never migrated). */
export const undefinedTable = "42P01"
/** E.g. a role without the TEMP privilege on the database. */
export const insufficientPrivilege = "42501"

/** The SQLSTATE of a failed statement, if `error` is one. */
export const sqlStateOf = (error: unknown): unknown =>
  error instanceof SqlError ? (error.cause as { readonly code?: unknown } | undefined)?.code : undefined
