/**
 * Maintenance debt, as data and pure decisions. Derived work (the search
 * vector, the link graph, statistics, purging closed ops) is owed per
 * (source, kind): a change bumps the debt's revision in the same transaction
 * as the change; a payer covers the revision it saw when it began. A kind
 * that fails is retried after a backoff that doubles from 5 minutes up to 30,
 * and never holds the other kinds back.
 */
import { Duration } from "effect"

export type Kind = "search" | "links" | "analyze" | "purge"

/** In the order a payer pays them: what people use first. */
export const kinds: ReadonlyArray<Kind> = ["search", "links", "analyze", "purge"]

/** What a change to a source's documents owes; entries (JSONL) owe statistics only. */
export const documentKinds: ReadonlyArray<Kind> = ["search", "links", "analyze"]
export const entryKinds: ReadonlyArray<Kind> = ["analyze"]

export interface DebtRow {
  readonly sourceId: string
  readonly kind: Kind
  readonly revision: number
  readonly paidRevision: number
  /** Epoch ms; null once paid. */
  readonly pendingSince: number | null
  readonly attempts: number
  /** Epoch ms: no run before this (backoff after a failure). */
  readonly nextAttemptAt: number
  readonly lastError: string | null
  /** Who is paying it now, and since when (epoch ms). */
  readonly payer: string | null
  readonly payingSince: number | null
  readonly runs: number
  readonly reruns: number
  /** Rows changed since the kind last did its work (analyze waits for enough of them). */
  readonly changed: number
}

export const firstBackoff = Duration.minutes(5)
export const maxBackoff = Duration.minutes(30)

/** How long to wait after the `attempts`-th failure in a row: 5 min, 10, 20, then 30 min. */
export const backoffAfter = (attempts: number): Duration.Duration =>
  Duration.min(Duration.times(firstBackoff, 2 ** Math.max(0, attempts - 1)), maxBackoff)

/** Owed and not held back by a backoff. */
export const isDue = (row: DebtRow, now: number): boolean => row.pendingSince !== null && row.nextAttemptAt <= now
