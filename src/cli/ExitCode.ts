/**
 * The process exit codes tidemark promises (README "Exit codes"), and the pure
 * decision of which one a finished run gets.
 */
import { Cause, Exit } from "effect"

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  /** Stopped early (timeout, interrupted work) with progress saved: a rerun continues. */
  partial: 75,
  sigint: 130,
  sigterm: 143
} as const

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

const signalExitCode = (signal: NodeJS.Signals | undefined): ExitCode =>
  signal === "SIGTERM" ? ExitCode.sigterm : ExitCode.sigint

/**
 * The main program succeeds with the code it decided on (errors are rendered
 * and mapped inside it). What is left: interruption, which only a signal causes,
 * and defects.
 */
export const exitCodeOf = (exit: Exit.Exit<ExitCode, unknown>, signal: NodeJS.Signals | undefined): number =>
  Exit.match(exit, {
    onSuccess: (code) => code,
    onFailure: (cause) =>
      Cause.isInterruptedOnly(cause) || signal !== undefined ? signalExitCode(signal) : ExitCode.failure
  })
