/**
 * The lease's spans and metrics, on the in-memory store under TestClock: every
 * renewal is a span under the lease's acquire and a count, and a lost lease a span
 * of its own with its reason, counted by reason. The sampler's decisions are
 * pure: checked here by their rules. The Prometheus renderer's output is read
 * back by a Prometheus text-format parser.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Metric, MetricBoundaries, TestClock } from "effect"
import parsePrometheus from "parse-prometheus-text-format"
import * as LeaseLockModule from "../src/lock/LeaseLock.js"
import { LeaseLock } from "../src/lock/LeaseLock.js"
import { LeaseStore } from "../src/lock/LeaseStore.js"
import * as MemoryLeaseStore from "../src/lock/MemoryLeaseStore.js"
import { failureClassOf, retryTransient } from "../src/db/Transient.js"
import * as Prometheus from "../src/serve/Prometheus.js"
import * as Metrics from "../src/telemetry/Metrics.js"
import { shouldSample } from "../src/telemetry/Sampler.js"
import * as Spans from "./support/spans.js"

const leases = LeaseLockModule.layer.pipe(Layer.provideMerge(MemoryLeaseStore.layer))

describe("lease spans and metrics (in-memory store, TestClock)", () => {
  it.scoped("each renewal is a span and a count; a lost lease is a span with its reason, and counted", () =>
    Effect.gen(function* () {
      const traced = yield* Spans.collecting
      const lock = yield* LeaseLock
      const store = yield* LeaseStore
      const renewalsBefore = (yield* Metric.value(Metrics.leaseRenewals)).count
      const lostCounter = Metric.tagged(Metrics.leaseLosses, "reason", "released")
      const lossesBefore = (yield* Metric.value(lostCounter)).count
      const held = yield* Deferred.make<void>()
      const work = yield* Effect.fork(
        lock
          .withLease("spans-test", () => Effect.zipRight(Deferred.succeed(held, undefined), Effect.never))
          .pipe(Effect.provide(traced.layer))
      )
      yield* Deferred.await(held)
      for (let i = 0; i < 3; i++) yield* TestClock.adjust("10 seconds")
      const renewals = traced.ended.filter((s) => s.name === "tidemark.lease.renew")
      expect(renewals).toHaveLength(3)
      for (const renewal of renewals) {
        expect(renewal.parent).toBe("tidemark.lease.acquire")
        expect(renewal.attributes.get("tidemark.lease")).toBe("spans-test")
        expect(renewal.attributes.get("tidemark.outcome")).toBe("renewed")
      }
      expect((yield* Metric.value(Metrics.leaseRenewals)).count - renewalsBefore).toBe(3)
      expect(traced.ended.find((s) => s.name === "tidemark.lease.acquire")?.attributes.get("tidemark.token")).toBe(1)

      // An operator releases it by force: the next renewal finds it gone.
      yield* store.forceRelease("spans-test")
      yield* TestClock.adjust("10 seconds")
      const exit = yield* Fiber.await(work)
      expect(Exit.isFailure(exit)).toBe(true)
      const lost = traced.ended.filter((s) => s.name === "tidemark.lease.lost")
      expect(lost).toHaveLength(1)
      expect(lost[0]!.attributes.get("tidemark.reason")).toBe("released")
      expect(lost[0]!.parent).toBe("tidemark.lease.acquire")
      expect((yield* Metric.value(lostCounter)).count - lossesBefore).toBe(1)
    }).pipe(Effect.provide(leases))
  )
})

describe("retries by failure class", () => {
  it.effect("each retry of a transient failure is counted under its class, never its message", () =>
    Effect.gen(function* () {
      const refused = Metric.tagged(Metrics.retries, "class", "ECONNREFUSED")
      const connection = Metric.tagged(Metrics.retries, "class", "sqlstate-08")
      const before = [(yield* Metric.value(refused)).count, (yield* Metric.value(connection)).count]
      let attempts = 0
      const failures = [
        Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }),
        { _tag: "SqlError", message: "lost", cause: Object.assign(new Error("terminating"), { code: "08006" }) },
        Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })
      ]
      const flaky = Effect.suspend(() =>
        attempts < failures.length ? Effect.fail(failures[attempts++]) : Effect.succeed("ok")
      )
      const fiber = yield* Effect.fork(retryTransient({ base: "10 millis", cap: "10 millis", retries: 5 })(flaky))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(fiber)).toBe("ok")
      expect((yield* Metric.value(refused)).count - before[0]!).toBe(2)
      expect((yield* Metric.value(connection)).count - before[1]!).toBe(1)
      expect(failureClassOf(new Error("no code at all"))).toBe("other")
    })
  )
})

describe("the sampler's rules", () => {
  const traceWithLow = (low: bigint) => `${"0".repeat(16)}${low.toString(16).padStart(16, "0")}`
  it("parentbased follows the parent; a root is decided by the root rule", () => {
    expect(shouldSample({ name: "parentbased_always_off", ratio: 1 }, true, traceWithLow(0n))).toBe(true)
    expect(shouldSample({ name: "parentbased_always_on", ratio: 1 }, false, traceWithLow(0n))).toBe(false)
    expect(shouldSample({ name: "parentbased_always_on", ratio: 1 }, undefined, traceWithLow(0n))).toBe(true)
    expect(shouldSample({ name: "parentbased_always_off", ratio: 1 }, undefined, traceWithLow(0n))).toBe(false)
    // Not parent-based: the rule applies to every span.
    expect(shouldSample({ name: "always_off", ratio: 1 }, true, traceWithLow(0n))).toBe(false)
  })
  it("traceidratio keeps the trace ids whose low 64 bits fall under ratio × 2^64, the whole trace alike", () => {
    const quarter = 1n << 62n
    const sampler = { name: "parentbased_traceidratio" as const, ratio: 0.25 }
    expect(shouldSample(sampler, undefined, traceWithLow(quarter - 4096n))).toBe(true)
    expect(shouldSample(sampler, undefined, traceWithLow(quarter + 4096n))).toBe(false)
    expect(shouldSample({ name: "traceidratio", ratio: 0 }, undefined, traceWithLow(0n))).toBe(false)
    expect(shouldSample({ name: "traceidratio", ratio: 1 }, undefined, traceWithLow((1n << 64n) - 1n))).toBe(true)
  })
})

describe("the Prometheus renderer", () => {
  it.effect("counters, gauges and histograms come back from a text-format parser as they were set", () =>
    Effect.gen(function* () {
      const counter = Metric.counter("render_test_total", {
        description: 'items "quoted"\nand a line',
        incremental: true
      })
      const gauge = Metric.gauge("render_test_gauge", { description: "a gauge" })
      const histogram = Metric.histogram(
        "render_test_seconds",
        MetricBoundaries.linear({ start: 0.1, width: 0.1, count: 3 }),
        "a histogram"
      )
      yield* Metric.incrementBy(Metric.tagged(counter, "source", 'C:\\notes "a"'), 3)
      yield* Metric.incrementBy(Metric.tagged(counter, "source", "b"), 2)
      yield* Metric.set(gauge, 1.5)
      for (const value of [0.05, 0.15, 0.25, 7]) yield* Metric.update(histogram, value)
      const families = new Map(parsePrometheus(Prometheus.render()).map((f) => [f.name, f]))
      const count = families.get("render_test_total")!
      expect(count.type).toBe("COUNTER")
      expect(count.help).toBe('items "quoted"\nand a line')
      expect(count.metrics.map((m) => [m.labels?.["source"], Number(m.value)])).toEqual([
        ['C:\\notes "a"', 3],
        ["b", 2]
      ])
      expect(families.get("render_test_gauge")!.metrics[0]!.value).toBe("1.5")
      const [h] = families.get("render_test_seconds")!.metrics
      expect(families.get("render_test_seconds")!.type).toBe("HISTOGRAM")
      expect(Number(h!.count)).toBe(4)
      expect(Number(h!.sum)).toBeCloseTo(7.45)
      expect(h!.buckets!["+Inf"]).toBe("4")
      // Cumulative: each bucket counts the values at or under its bound.
      const bounds = Object.entries(h!.buckets!).filter(([le]) => le !== "+Inf")
      expect(bounds.map(([, n]) => Number(n))).toEqual([1, 2, 3].slice(0, bounds.length))
    })
  )
})
