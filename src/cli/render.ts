/**
 * Turns any failure into what a person reads: one line saying what failed and
 * why, and a hint saying what to do. Never a stack trace, never an object dump.
 */
import { SqlError } from "@effect/sql/SqlError"
import { ConfigError } from "effect"
import { classify } from "../db/Transient.js"

export interface Rendered {
  readonly line: string
  readonly hint?: string
}

interface DriverError {
  readonly code?: string
  readonly message?: string
  readonly detail?: string
}

const driverErrorOf = (error: SqlError): DriverError | undefined => {
  let current: unknown = error.cause
  while (typeof current === "object" && current !== null) {
    const candidate = current as DriverError & { cause?: unknown }
    if (typeof candidate.message === "string" && candidate.message !== "") return candidate
    current = candidate.cause
  }
  return undefined
}

/** Permanent failures a person can fix in their configuration. */
const connectionHints: Readonly<Record<string, string>> = {
  "3D000": "the database in DATABASE_URL does not exist: create it, or fix the URL",
  "28P01": "the server refused the password: check the credentials in DATABASE_URL",
  "28000": "the server refused this role or host: check the user in DATABASE_URL and the server's pg_hba.conf",
  ENOTFOUND: "the host in DATABASE_URL does not resolve: check the URL",
  "42501": "the role in DATABASE_URL lacks a privilege tidemark needs (it creates the tidemark schema)"
}

const renderSqlError = (error: SqlError): Rendered => {
  const driver = driverErrorOf(error)
  const reason = driver?.message ?? error.message
  const code = driver?.code !== undefined ? ` [${driver.code}]` : ""
  if (classify(error) === "transient") {
    return {
      line: `database unavailable: ${reason}${code} (still failing after retries)`,
      hint: "check that the server is running and reachable (DATABASE_URL), and that it has free connections; rerun to continue"
    }
  }
  const hint = driver?.code !== undefined ? connectionHints[driver.code] : undefined
  const line = `database error: ${error.message}: ${reason}${code}`
  return hint !== undefined ? { line, hint } : { line }
}

const hasHint = (u: object): u is { readonly hint: string } => "hint" in u && typeof u.hint === "string"

export const renderFailure = (failure: unknown): Rendered => {
  if (failure instanceof SqlError) return renderSqlError(failure)
  if (ConfigError.isConfigError(failure)) {
    return {
      line: `configuration: ${String(failure).replace(/\s+/g, " ")}`,
      hint: "check the TIDEMARK_* and DATABASE_URL environment variables"
    }
  }
  if (failure instanceof Error) {
    return hasHint(failure) ? { line: failure.message, hint: failure.hint } : { line: failure.message }
  }
  return { line: String(failure) }
}
