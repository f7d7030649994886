/**
 * Which traces are exported, by the standard `OTEL_TRACES_SAMPLER` rules
 * (always_on, always_off, traceidratio and their parentbased_ forms; the
 * default parentbased_always_on). The decision is a pure function of the
 * parent's flag and the trace id, so a trace is kept or dropped whole; the
 * tracer wrapper below applies it to any exporting tracer: a dropped span is
 * a span that is never exported, its children see `sampled: false`.
 */
import { Option, Tracer } from "effect"

export type SamplerName =
  | "always_on"
  | "always_off"
  | "traceidratio"
  | "parentbased_always_on"
  | "parentbased_always_off"
  | "parentbased_traceidratio"

export const samplerNames: ReadonlyArray<SamplerName> = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio"
]

export interface Sampler {
  readonly name: SamplerName
  /** traceidratio: the share of traces kept, 0 to 1. */
  readonly ratio: number
}

export const defaultSampler: Sampler = { name: "parentbased_always_on", ratio: 1 }

/** Kept when the trace id's low 64 bits fall under ratio × 2⁶⁴ (the rule OpenTelemetry's SDKs use). */
const underRatio = (traceId: string, ratio: number) => {
  if (ratio >= 1) return true
  if (ratio <= 0) return false
  const low = BigInt(`0x${traceId.slice(-16).padStart(16, "0")}`)
  return low < BigInt(Math.floor(ratio * 2 ** 53)) << 11n
}

/** Whether a span of `traceId` is exported, given its parent's flag (undefined for a root). */
export const shouldSample = (sampler: Sampler, parentSampled: boolean | undefined, traceId: string): boolean => {
  if (sampler.name.startsWith("parentbased_") && parentSampled !== undefined) return parentSampled
  switch (sampler.name) {
    case "always_on":
    case "parentbased_always_on":
      return true
    case "always_off":
    case "parentbased_always_off":
      return false
    case "traceidratio":
    case "parentbased_traceidratio":
      return underRatio(traceId, sampler.ratio)
  }
}

const noop = () => {}

/** A span that records nothing and is never exported; its children inherit `sampled: false`. */
const droppedSpan = (of: Tracer.Span): Tracer.Span => ({
  _tag: "Span",
  name: of.name,
  spanId: of.spanId,
  traceId: of.traceId,
  parent: of.parent,
  context: of.context,
  status: of.status,
  attributes: new Map(),
  links: [],
  sampled: false,
  kind: of.kind,
  end: noop,
  attribute: noop,
  event: noop,
  addLinks: noop
})

/** `exporting` with the sampler's decision applied to every span it makes. */
export const sampled = (exporting: Tracer.Tracer, sampler: Sampler): Tracer.Tracer =>
  sampler.name === "always_on"
    ? exporting
    : Tracer.make({
        span: (name, parent, context, links, startTime, kind, options) => {
          const span = exporting.span(name, parent, context, links, startTime, kind, options)
          const parentSampled = Option.isSome(parent) ? parent.value.sampled : undefined
          return shouldSample(sampler, parentSampled, span.traceId) ? span : droppedSpan(span)
        },
        context: (f, fiber) => exporting.context(f, fiber)
      })
