/**
 * Effect's metric registry in Prometheus' text exposition format (0.0.4):
 * counters, gauges and histograms (cumulative `le` buckets, `_sum`, `_count`),
 * one `# HELP` and `# TYPE` per family, labels escaped. Frequencies become a
 * counter per value (label `value`); summaries their quantiles. A small
 * renderer of our own: the registry is Effect's, and OpenTelemetry's
 * Prometheus exporter would need the OpenTelemetry SDK in the process too.
 */
import { Metric, MetricState, Option } from "effect"
import type * as MetricKey from "effect/MetricKey"
import type * as MetricPair from "effect/MetricPair"

export const contentType = "text/plain; version=0.0.4; charset=utf-8"

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')
const escapeHelp = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1")

const number = (value: number | bigint) =>
  typeof value === "bigint"
    ? value.toString()
    : Number.isNaN(value)
      ? "NaN"
      : value === Infinity
        ? "+Inf"
        : value === -Infinity
          ? "-Inf"
          : String(value)

const labels = (pairs: ReadonlyArray<readonly [string, string]>) =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${sanitize(k)}="${escapeLabel(v)}"`).join(",")}}`

interface Family {
  readonly type: "counter" | "gauge" | "histogram" | "summary"
  readonly help: string
  readonly lines: Array<string>
}

const typeOf = (state: MetricState.MetricState.Untyped): Family["type"] | undefined =>
  MetricState.isCounterState(state) || MetricState.isFrequencyState(state)
    ? "counter"
    : MetricState.isGaugeState(state)
      ? "gauge"
      : MetricState.isHistogramState(state)
        ? "histogram"
        : MetricState.isSummaryState(state)
          ? "summary"
          : undefined

const linesOf = (name: string, key: MetricKey.MetricKey.Untyped, state: MetricState.MetricState.Untyped) => {
  const tags = key.tags.map((tag) => [tag.key, tag.value] as const)
  if (MetricState.isCounterState(state)) return [`${name}${labels(tags)} ${number(state.count)}`]
  if (MetricState.isGaugeState(state)) return [`${name}${labels(tags)} ${number(state.value)}`]
  if (MetricState.isFrequencyState(state)) {
    return [...state.occurrences].map(([value, n]) => `${name}${labels([...tags, ["value", value]])} ${n}`)
  }
  if (MetricState.isHistogramState(state)) {
    const buckets = state.buckets.map(([bound, n]) => `${name}_bucket${labels([...tags, ["le", number(bound)]])} ${n}`)
    // The registry's last boundary is +Inf; Prometheus requires that bucket.
    if (state.buckets.at(-1)?.[0] !== Infinity) {
      buckets.push(`${name}_bucket${labels([...tags, ["le", "+Inf"]])} ${state.count}`)
    }
    return [
      ...buckets,
      `${name}_sum${labels(tags)} ${number(state.sum)}`,
      `${name}_count${labels(tags)} ${state.count}`
    ]
  }
  if (MetricState.isSummaryState(state)) {
    return [
      ...state.quantiles.map(
        ([q, value]) =>
          `${name}${labels([...tags, ["quantile", String(q)]])} ${number(Option.getOrElse(value, () => NaN))}`
      ),
      `${name}_sum${labels(tags)} ${number(state.sum)}`,
      `${name}_count${labels(tags)} ${state.count}`
    ]
  }
  return []
}

/** Renders `pairs` (by default the whole registry, now). */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped> = Metric.unsafeSnapshot()): string => {
  const families = new Map<string, Family>()
  for (const { metricKey, metricState } of pairs) {
    const type = typeOf(metricState)
    if (type === undefined) continue
    const name = sanitize(metricKey.name)
    let family = families.get(name)
    if (family === undefined) {
      family = { type, help: Option.getOrElse(metricKey.description, () => name), lines: [] }
      families.set(name, family)
    }
    family.lines.push(...linesOf(name, metricKey, metricState))
  }
  let text = ""
  for (const [name, family] of [...families].sort(([a], [b]) => a.localeCompare(b))) {
    text += `# HELP ${name} ${escapeHelp(family.help)}\n# TYPE ${name} ${family.type}\n${family.lines.join("\n")}\n`
  }
  return text
}
