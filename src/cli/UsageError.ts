import { Data } from "effect"

/** A command used in a way it refuses (exit 2), with what to do instead. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string; readonly hint: string }> {}
