/**
 * OpenTelemetry export, switched on by the standard variables and off (a
 * layer that does nothing, nothing loaded or sent) when no endpoint is set:
 *
 *   OTEL_EXPORTER_OTLP_ENDPOINT           base URL; /v1/traces and /v1/metrics are appended
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT    (and _METRICS_) a signal's own full URL
 *   OTEL_EXPORTER_OTLP_PROTOCOL           http/protobuf (the default) or http/json
 *   OTEL_EXPORTER_OTLP_HEADERS            k=v,k2=v2 sent with every export (never logged)
 *   OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
 *   OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG
 *   OTEL_METRIC_EXPORT_INTERVAL           milliseconds (default 60000)
 *   OTEL_SDK_DISABLED=true                off whatever else is set
 *
 * The exporters are @effect/opentelemetry's own OTLP/HTTP ones (no OpenTelemetry
 * SDK in the process): spans are Effect's spans, metrics Effect's metric
 * registry. Whatever is buffered is sent when the layer's scope closes, so a
 * `tidemark sync` that ends, or is stopped by a signal, still delivers its
 * trace. A collector that is down costs a sync nothing but that delay (bounded
 * by `shutdownTimeout`): exports fail quietly and are retried later.
 */
import * as OtlpMetrics from "@effect/opentelemetry/OtlpMetrics"
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Headers from "@effect/platform/Headers"
import { Config, ConfigError, Data, Duration, Effect, Either, Layer, Option } from "effect"
import { packageVersion } from "../packageRoot.js"
import { defaultSampler, type Sampler, type SamplerName, sampled, samplerNames } from "./Sampler.js"

/** A telemetry variable that cannot be used: named, with why (its value is not repeated: it may hold a token). */
export class TelemetryConfigError extends Data.TaggedError("TelemetryConfigError")<{
  readonly variable: string
  readonly reason: string
}> {
  override get message() {
    return `${this.variable}: ${this.reason}`
  }
}

export interface TelemetrySettings {
  readonly tracesUrl: string
  readonly metricsUrl: string
  readonly protocol: "http/protobuf" | "http/json"
  readonly headers: Readonly<Record<string, string>>
  readonly sampler: Sampler
  /** Undefined: OTEL_RESOURCE_ATTRIBUTES' service.name if it has one, else "tidemark". */
  readonly serviceName: string | undefined
  readonly metricInterval: Duration.Duration
}

const optional = (name: string) =>
  Config.option(Config.string(name)).pipe(Config.map(Option.filter((value) => value.trim() !== "")))

const signalUrl = (base: string, signal: "traces" | "metrics") => `${base.replace(/\/+$/, "")}/v1/${signal}`

const checkUrl = (variable: string, value: string) => {
  try {
    const url = new URL(value)
    if (url.protocol === "http:" || url.protocol === "https:") return Either.right(value)
  } catch {
    // named below
  }
  return Either.left(new TelemetryConfigError({ variable, reason: "not an http:// or https:// URL" }))
}

/** `k=v,k2=v2` with percent-encoded values, as the specification writes them. */
export const parseHeaders = (text: string): Either.Either<Record<string, string>, TelemetryConfigError> => {
  const headers: Record<string, string> = {}
  for (const part of text.split(",")) {
    if (part.trim() === "") continue
    const at = part.indexOf("=")
    if (at <= 0) {
      return Either.left(
        new TelemetryConfigError({ variable: "OTEL_EXPORTER_OTLP_HEADERS", reason: "each entry must be key=value" })
      )
    }
    headers[part.slice(0, at).trim().toLowerCase()] = decodeURIComponent(part.slice(at + 1).trim())
  }
  return Either.right(headers)
}

const fail = (variable: string, reason: string) => Effect.fail(new TelemetryConfigError({ variable, reason }))

/** The settings from the environment, or None when export is off. */
export const settings: Effect.Effect<
  Option.Option<TelemetrySettings>,
  TelemetryConfigError | ConfigError.ConfigError
> = Effect.gen(function* () {
  const disabled = yield* optional("OTEL_SDK_DISABLED")
  if (Option.getOrUndefined(disabled)?.trim().toLowerCase() === "true") return Option.none()
  const base = yield* optional("OTEL_EXPORTER_OTLP_ENDPOINT")
  const traces = yield* optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
  const metrics = yield* optional("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
  if (Option.isNone(base) && Option.isNone(traces) && Option.isNone(metrics)) return Option.none()
  const urlOf = (own: Option.Option<string>, variable: string, signal: "traces" | "metrics") =>
    Option.isSome(own)
      ? checkUrl(variable, own.value)
      : Option.isSome(base)
        ? Either.map(checkUrl("OTEL_EXPORTER_OTLP_ENDPOINT", base.value), (b) => signalUrl(b, signal))
        : Either.left(
            new TelemetryConfigError({
              variable: "OTEL_EXPORTER_OTLP_ENDPOINT",
              reason: `not set, and no OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT either`
            })
          )
  const tracesUrl = yield* urlOf(traces, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "traces")
  const metricsUrl = yield* urlOf(metrics, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "metrics")

  const protocol = Option.getOrElse(yield* optional("OTEL_EXPORTER_OTLP_PROTOCOL"), () => "http/protobuf").trim()
  if (protocol !== "http/protobuf" && protocol !== "http/json") {
    return yield* fail(
      "OTEL_EXPORTER_OTLP_PROTOCOL",
      `${JSON.stringify(protocol)} is not supported: use http/protobuf or http/json`
    )
  }
  const headersText = yield* optional("OTEL_EXPORTER_OTLP_HEADERS")
  const headers = Option.isSome(headersText) ? yield* parseHeaders(headersText.value) : {}

  const samplerText = Option.getOrElse(yield* optional("OTEL_TRACES_SAMPLER"), () => defaultSampler.name).trim()
  if (!samplerNames.includes(samplerText as SamplerName)) {
    return yield* fail("OTEL_TRACES_SAMPLER", `${JSON.stringify(samplerText)} is not one of ${samplerNames.join(", ")}`)
  }
  const ratioText = yield* optional("OTEL_TRACES_SAMPLER_ARG")
  const ratio = Option.isSome(ratioText) ? Number(ratioText.value) : 1
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    return yield* fail("OTEL_TRACES_SAMPLER_ARG", "must be a number from 0 to 1")
  }
  const intervalText = yield* optional("OTEL_METRIC_EXPORT_INTERVAL")
  const intervalMillis = Option.isSome(intervalText) ? Number(intervalText.value) : 60_000
  if (!Number.isInteger(intervalMillis) || intervalMillis <= 0) {
    return yield* fail("OTEL_METRIC_EXPORT_INTERVAL", "must be a whole number of milliseconds above 0")
  }
  const serviceName = yield* optional("OTEL_SERVICE_NAME")
  const attributes = Option.getOrElse(yield* optional("OTEL_RESOURCE_ATTRIBUTES"), () => "")
  return Option.some({
    tracesUrl,
    metricsUrl,
    protocol,
    headers,
    sampler: { name: samplerText as SamplerName, ratio },
    serviceName:
      Option.getOrUndefined(serviceName) ?? (/(^|,)\s*service\.name=/.test(attributes) ? undefined : "tidemark"),
    metricInterval: Duration.millis(intervalMillis)
  } satisfies TelemetrySettings)
})

/** Exports to the collector `settings` name, for as long as the layer's scope is open. */
export const exporting = (settings: TelemetrySettings): Layer.Layer<never> => {
  const resource = { serviceName: settings.serviceName, serviceVersion: packageVersion }
  const tracer = Layer.unwrapScoped(
    Effect.map(
      OtlpTracer.make({
        url: settings.tracesUrl,
        resource,
        headers: settings.headers,
        exportInterval: "2 seconds",
        shutdownTimeout: "3 seconds"
      }),
      (exportingTracer) => Layer.setTracer(sampled(exportingTracer, settings.sampler))
    )
  )
  const metrics = OtlpMetrics.layer({
    url: settings.metricsUrl,
    resource,
    headers: settings.headers,
    exportInterval: settings.metricInterval,
    shutdownTimeout: "3 seconds"
  })
  return Layer.mergeAll(tracer, metrics).pipe(
    Layer.provide(settings.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf),
    Layer.provide(FetchHttpClient.layer),
    // The headers (a collector's token, say) stay out of anything an export failure logs.
    Layer.provide(
      Layer.scopedDiscard(
        Effect.locallyScopedWith(Headers.currentRedactedNames, (names) => [...names, ...Object.keys(settings.headers)])
      )
    )
  )
}

/** Export on when the environment asks for it, else nothing (not even the exporters' code runs). */
export const layer: Layer.Layer<never, TelemetryConfigError | ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(settings, Option.match({ onNone: () => Layer.empty, onSome: exporting }))
)
