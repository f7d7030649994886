import { Data } from "effect"
import { formatDuration } from "../util/humanDuration.js"

/** Who holds a lease, as the store reports it. */
export interface HolderInfo {
  readonly holder: string
  readonly host: string
  readonly pid: number
}

export class LockBusy extends Data.TaggedError("LockBusy")<
  HolderInfo & {
    readonly name: string
    readonly token: number
    readonly ageMillis: number
    readonly sinceHeartbeatMillis: number
  }
> {
  override get message() {
    return `lease ${this.name} is held by pid ${this.pid} on ${this.host} (for ${formatDuration(this.ageMillis)}, last heartbeat ${formatDuration(this.sinceHeartbeatMillis)} ago)`
  }
}

/** Why a holder lost its lease. */
export type LockLostReason = "taken-over" | "released" | "deadline-passed" | "fenced-out"

const lostBecause: Record<LockLostReason, string> = {
  "taken-over": "another holder took it over",
  released: "it was released by someone else (an operator's `tidemark lock release --force`)",
  "deadline-passed":
    "could not renew it before the renew deadline (the database was unreachable, or this process was paused)",
  "fenced-out": "a write was refused: another holder has the lease now"
}

export class LockLost extends Data.TaggedError("LockLost")<{
  readonly name: string
  readonly token: number
  readonly reason: LockLostReason
}> {
  override get message() {
    return `lost lease ${this.name} (token ${this.token}): ${lostBecause[this.reason]}`
  }
  get hint() {
    return "the work stopped before another holder could be granted the lease; rerun to continue"
  }
}

export class FencedOut extends Data.TaggedError("FencedOut")<{
  readonly name: string
  readonly token: number
  readonly currentToken: number | null
}> {
  override get message() {
    return `write refused: lease ${this.name} moved from token ${this.token} to ${this.currentToken ?? "nobody"}`
  }
}

export class InvalidLeaseTimings extends Data.TaggedError("InvalidLeaseTimings")<{ readonly reason: string }> {
  override get message() {
    return `invalid lease timings: ${this.reason}`
  }
}
