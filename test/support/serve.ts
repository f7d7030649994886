/** A running `tidemark serve` (or worker with `--port`) and requests to it. */
import parsePrometheus from "parse-prometheus-text-format"
import type * as Cli from "./cli.js"

/** The address the server logged ("Listening on http://…"). */
export const addressOf = async (child: Cli.Child) => {
  const line = await child.errLine(/Listening on http:\/\//)
  return /Listening on (http:\/\/\S+)/.exec(line)![1]!
}

export const get = async (base: string, pathname: string, headers: Record<string, string> = {}) => {
  const response = await fetch(new URL(pathname, base), { headers })
  return { status: response.status, type: response.headers.get("content-type") ?? "", text: await response.text() }
}

/** `/metrics` parsed by a Prometheus text-format parser: family → samples. */
export const metrics = async (base: string, headers: Record<string, string> = {}) => {
  const response = await get(base, "/metrics", headers)
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}: ${response.text}`)
  return { type: response.type, families: new Map(parsePrometheus(response.text).map((f) => [f.name, f])) }
}

/** The value of the sample of `family` whose labels include `labels`. */
export const sample = (
  families: ReadonlyMap<
    string,
    { readonly metrics: ReadonlyArray<{ value?: string; labels?: Record<string, string> }> }
  >,
  family: string,
  labels: Record<string, string> = {}
) => {
  const found = families.get(family)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
  return found?.value === undefined ? undefined : Number(found.value)
}
