import { Data, Duration } from "effect"

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
    readonly age: Duration.Duration
    readonly sinceHeartbeat: Duration.Duration
  }
> {
  override get message() {
    return `lease ${this.name} is held by pid ${this.pid} on ${this.host} (for ${Duration.format(this.age)}, last heartbeat ${Duration.format(this.sinceHeartbeat)} ago)`
  }
}

export class LockLost extends Data.TaggedError("LockLost")<{
  readonly name: string
  readonly token: number
  readonly reason: "taken-over" | "deadline-passed"
}> {
  override get message() {
    return this.reason === "taken-over"
      ? `lost lease ${this.name} (token ${this.token}): another holder took it over`
      : `lost lease ${this.name} (token ${this.token}): could not renew it before the renew deadline`
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
