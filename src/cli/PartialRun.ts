import { Data } from "effect"

/** Work stopped early with its progress saved (exit 75): a rerun continues it. */
export class PartialRun extends Data.TaggedError("PartialRun")<{ readonly reason: string; readonly banked: number }> {
  override get message() {
    return `partial: ${this.reason}; ${this.banked} items banked, rerun to continue`
  }
}
