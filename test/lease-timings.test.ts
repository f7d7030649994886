import { describe, expect, it } from "vitest"
import { Duration, Either } from "effect"
import * as LeaseTimings from "../src/lock/LeaseTimings.js"

const rejected = (input: Parameters<typeof LeaseTimings.make>[0]) => {
  const result = LeaseTimings.make(input)
  expect(Either.isLeft(result)).toBe(true)
  return Either.isLeft(result) ? result.left.message : ""
}

describe("lease timings", () => {
  it("defaults to ttl 30 s, renew every 10 s, deadline 20 s", () => {
    const { ttl, renewEvery, deadline } = LeaseTimings.defaultTimings
    expect([ttl, renewEvery, deadline].map(Duration.toSeconds)).toEqual([30, 10, 20])
    expect(Either.getOrThrow(LeaseTimings.fromTtl("30 seconds"))).toEqual(LeaseTimings.defaultTimings)
  })

  it("rejects combinations that would let a lost lease keep working", () => {
    expect(rejected({ ttl: "30 seconds", renewEvery: "10 seconds", deadline: "30 seconds" })).toContain(
      "shorter than the ttl"
    )
    expect(rejected({ ttl: "30 seconds", renewEvery: "10 seconds", deadline: "40 seconds" })).toContain(
      "shorter than the ttl"
    )
    expect(rejected({ ttl: "30 seconds", renewEvery: "20 seconds", deadline: "20 seconds" })).toContain(
      "shorter than the deadline"
    )
    expect(rejected({ ttl: 0, renewEvery: 0, deadline: 0 })).toContain("ttl must be")
    expect(rejected({ ttl: Duration.infinity, renewEvery: "1 second", deadline: "2 seconds" })).toContain("finite")
    expect(rejected({ ttl: "3 seconds", renewEvery: 0, deadline: "2 seconds" })).toContain("at least a millisecond")
  })

  it("a lease may be taken over only strictly after it expired (store clock)", () => {
    expect(LeaseTimings.mayTakeOver(1_000, 999)).toBe(false)
    expect(LeaseTimings.mayTakeOver(1_000, 1_000)).toBe(false)
    expect(LeaseTimings.mayTakeOver(1_000, 1_001)).toBe(true)
  })

  it("the holder gives up exactly at the deadline after its last successful renewal", () => {
    const timings = LeaseTimings.defaultTimings
    expect(LeaseTimings.deadlinePassed(5_000, 24_999, timings)).toBe(false)
    expect(LeaseTimings.deadlinePassed(5_000, 25_000, timings)).toBe(true)
    expect(Duration.toMillis(LeaseTimings.timeLeft(5_000, 20_000, timings))).toBe(5_000)
    expect(Duration.toMillis(LeaseTimings.timeLeft(5_000, 30_000, timings))).toBe(0)
  })
})
