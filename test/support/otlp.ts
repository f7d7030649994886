/**
 * An OTLP/HTTP receiver inside the test: an HTTP server that keeps every
 * request an exporter sends and decodes the JSON ones (traces, metrics) into
 * plain spans and metric points.
 */
import * as http from "node:http"

export interface Received {
  readonly path: string
  readonly contentType: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: Buffer
}

export interface Span {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  readonly attributes: Record<string, unknown>
  readonly status: { readonly code?: number; readonly message?: string }
  readonly events: ReadonlyArray<{ readonly name: string; readonly attributes: Record<string, unknown> }>
  readonly resource: Record<string, unknown>
}

export interface Point {
  readonly metric: string
  readonly kind: "sum" | "gauge" | "histogram"
  readonly attributes: Record<string, unknown>
  /** A sum's or gauge's value; a histogram's count. */
  readonly value: number
  readonly sum?: number
}

export interface Receiver {
  readonly port: number
  readonly url: string
  readonly received: Array<Received>
  readonly spans: () => Array<Span>
  /** The last exported point of each metric and attribute set (exports are cumulative). */
  readonly points: () => Array<Point>
  readonly close: () => Promise<void>
}

type AnyValue = {
  stringValue?: string
  intValue?: number | string
  doubleValue?: number
  boolValue?: boolean
  arrayValue?: { values: Array<AnyValue> }
}

const valueOf = (v: AnyValue): unknown =>
  v.stringValue ??
  (v.intValue !== undefined ? Number(v.intValue) : undefined) ??
  v.doubleValue ??
  v.boolValue ??
  v.arrayValue?.values.map(valueOf)

const attributesOf = (list: ReadonlyArray<{ key: string; value: AnyValue }> | undefined) =>
  Object.fromEntries((list ?? []).map(({ key, value }) => [key, valueOf(value)]))

const json = (r: Received) => JSON.parse(r.body.toString("utf8")) as any

export const start = (port = 0, host = "127.0.0.1"): Promise<Receiver> =>
  new Promise((resolve, reject) => {
    const received: Array<Received> = []
    const server = http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        received.push({
          path: req.url ?? "",
          contentType: String(req.headers["content-type"] ?? ""),
          headers: req.headers,
          body: Buffer.concat(chunks)
        })
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.once("error", reject)
    server.listen(port, host, () => {
      const bound = (server.address() as { port: number }).port
      const isJson = (r: Received) => r.contentType.startsWith("application/json")
      resolve({
        port: bound,
        url: `http://${host}:${bound}`,
        received,
        spans: () =>
          received
            .filter((r) => r.path === "/v1/traces" && isJson(r))
            .flatMap((r) =>
              (json(r).resourceSpans as Array<any>).flatMap((rs) =>
                (rs.scopeSpans as Array<any>).flatMap((ss) =>
                  (ss.spans as Array<any>).map((s): Span => ({
                    traceId: s.traceId,
                    spanId: s.spanId,
                    parentSpanId: s.parentSpanId === "" ? undefined : s.parentSpanId,
                    name: s.name,
                    attributes: attributesOf(s.attributes),
                    status: s.status ?? {},
                    events: (s.events ?? []).map((e: any) => ({
                      name: e.name,
                      attributes: attributesOf(e.attributes)
                    })),
                    resource: attributesOf(rs.resource?.attributes)
                  }))
                )
              )
            ),
        points: () => {
          const last = new Map<string, Point>()
          for (const r of received.filter((r) => r.path === "/v1/metrics" && isJson(r))) {
            for (const rm of json(r).resourceMetrics as Array<any>) {
              for (const sm of rm.scopeMetrics as Array<any>) {
                for (const m of sm.metrics as Array<any>) {
                  const kind = m.sum ? "sum" : m.gauge ? "gauge" : m.histogram ? "histogram" : undefined
                  if (kind === undefined) continue
                  for (const p of m[kind].dataPoints as Array<any>) {
                    const attributes = attributesOf(p.attributes)
                    const value = kind === "histogram" ? Number(p.count) : Number(p.asInt ?? p.asDouble ?? 0)
                    last.set(`${m.name} ${JSON.stringify(attributes)}`, {
                      metric: m.name,
                      kind,
                      attributes,
                      value,
                      ...(kind === "histogram" ? { sum: Number(p.sum) } : {})
                    })
                  }
                }
              }
            }
          }
          return [...last.values()]
        },
        close: () => new Promise((done) => server.close(() => done()))
      })
    })
  })
