/**
 * What every tidemark span says about a failure: `error.type` (OpenTelemetry's
 * attribute for it) is the error's tag, so a trace search for
 * `error.type=LockLost` finds every run that lost its lease. The exporter adds
 * the exception event and the error status itself.
 */
import { Effect } from "effect"

/** The tag of a tagged error, else its name, else "unknown". */
export const tagOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const tag = (error as { readonly _tag?: unknown })._tag
    if (typeof tag === "string") return tag
    const name = (error as { readonly name?: unknown }).name
    if (typeof name === "string") return name
  }
  return "unknown"
}

/** Annotates the current span with a failure's tag (run inside the span). */
export const recordErrorTag = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tapError(self, (error) => Effect.annotateCurrentSpan("error.type", tagOf(error)))
