/**
 * OpenTelemetry export from the real CLI to an OTLP/HTTP receiver inside the
 * test: the spans of a sync with their parent links and attributes, an error
 * recorded with its tag, the metrics with the values the sync reports, the
 * standard variables (protocol, service name, resource attributes, headers,
 * sampler) honoured, and nothing sent when no endpoint is set.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as Otlp from "./support/otlp.js"
import * as TestDatabase from "./support/TestDatabase.js"

describe("OpenTelemetry export (real CLI, real PostgreSQL, an OTLP receiver)", () => {
  let url: string
  let receiver: Otlp.Receiver
  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: url,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    ...extra
  })

  beforeAll(async () => {
    url = await TestDatabase.createDatabase("telemetry")
    receiver = await Otlp.start()
    expect((await Cli.run(["migrate"], { DATABASE_URL: url })).code).toBe(0)
  })
  afterAll(async () => {
    await receiver.close()
    await TestDatabase.dropDatabase(url)
  })

  it("a sync is one trace: command → sync → lease, plan, import → batch reads and writes, flushes; metrics match its summary", async () => {
    receiver.received.length = 0
    const root = Folder.makeFolder({ ...Folder.notes(1200), "bad.md": "---\n: [broken\n---\n" })
    const result = await Cli.run(["sync", root, "--json", "--concurrency", "1"], {
      ...env(),
      OTEL_SERVICE_NAME: "tidemark-under-test",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test,team=notes",
      OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20collector-secret"
    })
    expect(result.code, result.stderr).toBe(0)
    const summary = JSON.parse(result.stdout.trim().split("\n").at(-1)!)
    expect(summary).toMatchObject({ imported: 1200, failed: 1 })
    expect(result.stderr).not.toContain("collector-secret")
    // Sent with the headers the variable names, percent-decoded.
    expect(receiver.received.every((r) => r.headers["authorization"] === "Bearer collector-secret")).toBe(true)

    const spans = receiver.spans()
    const byId = new Map(spans.map((s) => [s.spanId, s]))
    const named = (name: string) => spans.filter((s) => s.name === name)
    const parentOf = (s: Otlp.Span) => (s.parentSpanId === undefined ? undefined : byId.get(s.parentSpanId))

    const [command] = named("tidemark sync")
    expect(command, spans.map((s) => s.name).join(", ")).toBeDefined()
    expect(command!.parentSpanId).toBeUndefined()
    expect(command!.attributes).toMatchObject({ "tidemark.command": "sync" })
    expect(command!.resource).toMatchObject({
      "service.name": "tidemark-under-test",
      "deployment.environment": "test",
      team: "notes"
    })
    // Every span of the run is in the command's trace.
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([command!.traceId]))

    const [sync] = named("tidemark.sync")
    expect(parentOf(sync!)).toBe(command)
    expect(sync!.attributes).toMatchObject({
      "tidemark.source": root,
      "tidemark.kind": "dir",
      "tidemark.op": summary.opId,
      "tidemark.resumed": false
    })
    const [acquire] = named("tidemark.lease.acquire")
    expect(parentOf(acquire!)).toBe(sync)
    expect(acquire!.attributes).toMatchObject({ "tidemark.lease": `sync:${root}` })
    const [plan] = named("tidemark.plan")
    expect(parentOf(plan!)).toBe(sync)
    expect(plan!.attributes).toMatchObject({ "tidemark.seen": 1201, "tidemark.changed": 1201, "tidemark.deletes": 0 })
    const [imported] = named("tidemark.import")
    expect(parentOf(imported!)).toBe(sync)

    const reads = named("tidemark.batch.read")
    const writes = named("tidemark.batch.write")
    // 1201 items in batches of 500: 500, 500, 201 (the broken file is read, and rejected by the sink).
    expect(reads.map((s) => s.attributes["tidemark.items"]).sort()).toEqual([201, 500, 500])
    expect(writes.map((s) => s.attributes["tidemark.items"]).sort()).toEqual([201, 500, 500])
    for (const batch of [...reads, ...writes]) expect(parentOf(batch)).toBe(imported)
    expect(writes.reduce((n, s) => n + Number(s.attributes["tidemark.imported"]), 0)).toBe(1200)
    expect(writes.reduce((n, s) => n + Number(s.attributes["tidemark.failed"]), 0)).toBe(1)
    // The SQL of a write is inside its span.
    for (const write of writes)
      expect(spans.some((s) => parentOf(s) === write && s.name === "sql.transaction")).toBe(true)

    const flushes = named("tidemark.checkpoint.flush")
    expect(flushes.length).toBeGreaterThan(0)
    for (const flush of flushes) expect(parentOf(flush)).toBe(sync)
    expect(flushes.reduce((n, s) => n + Number(s.attributes["tidemark.items"]), 0)).toBe(1201)
    for (const s of spans) expect(s.status.code ?? 1, s.name).not.toBe(2)

    const points = receiver.points()
    const point = (metric: string, attributes: Record<string, unknown> = {}) =>
      points.find((p) => p.metric === metric && Object.entries(attributes).every(([k, v]) => p.attributes[k] === v))
    expect(point("tidemark_items_synced_total", { source: root })?.value).toBe(1200)
    expect(point("tidemark_items_failed_total", { source: root })?.value).toBe(1)
    // Every file read, the rejected one too.
    const bytes = Object.values(Folder.notes(1200)).reduce((n, text) => n + Buffer.byteLength(text), 0)
    expect(point("tidemark_bytes_synced_total", { source: root })?.value).toBe(bytes + "---\n: [broken\n---\n".length)
    expect(point("tidemark_syncs_total", { source: root, outcome: "ok" })?.value).toBe(1)
    const writeLatency = point("tidemark_batch_write_seconds")!
    expect(writeLatency.kind).toBe("histogram")
    expect(writeLatency.value).toBe(3)
    expect(writeLatency.sum).toBeGreaterThan(0)
    expect(point("tidemark_batch_read_seconds")?.value).toBe(3)
    expect(point("tidemark_checkpoint_flush_seconds")?.value).toBe(flushes.length)
  })

  it("a failed sync records the error on its span with its tag", async () => {
    receiver.received.length = 0
    const root = Folder.makeFolder(Folder.notes(40))
    expect((await Cli.run(["sync", root], env())).code).toBe(0)
    // Every file gone: the mass-change guard refuses to delete them all.
    for (const entry of fs.readdirSync(root)) fs.rmSync(path.join(root, entry), { recursive: true })
    receiver.received.length = 0
    const refused = await Cli.run(["sync", root], env())
    expect(refused.code).not.toBe(0)
    const [sync] = receiver.spans().filter((s) => s.name === "tidemark.sync")
    expect(sync!.status.code).toBe(2)
    expect(sync!.attributes["error.type"]).toBe("MassChangeRefused")
    expect(sync!.events.find((e) => e.name === "exception")?.attributes["exception.type"]).toBe("MassChangeRefused")
    const failed = receiver
      .points()
      .find((p) => p.metric === "tidemark_syncs_total" && p.attributes["outcome"] === "failed")
    expect(failed?.value).toBe(1)
  })

  it("each maintenance kind paid is a span with its outcome, counted by kind and outcome", async () => {
    const root = Folder.makeFolder({ "a.md": "# A\n\nSee [[b]].\n", "b.md": "# B\n" })
    expect((await Cli.run(["sync", root], env())).code).toBe(0)
    receiver.received.length = 0
    const paid = await Cli.run(["maintain", "--source", root, "--json"], env())
    expect(paid.code, paid.stderr).toBe(0)
    const spans = receiver.spans().filter((s) => s.name.startsWith("tidemark.maintenance."))
    const kinds = spans.map((s) => s.attributes["tidemark.kind"]).sort()
    expect(kinds).toEqual(expect.arrayContaining(["links", "search"]))
    for (const span of spans) {
      expect(span.name).toBe(`tidemark.maintenance.${span.attributes["tidemark.kind"]}`)
      expect(span.attributes).toMatchObject({ "tidemark.source": root, "tidemark.outcome": "paid" })
    }
    const counted = receiver
      .points()
      .filter((p) => p.metric === "tidemark_maintenance_runs_total" && p.attributes["outcome"] === "paid")
    expect(counted.map((p) => p.attributes["kind"]).sort()).toEqual(kinds)
  })

  it("http/protobuf by default; always_off sends metrics and no spans", async () => {
    receiver.received.length = 0
    const root = Folder.makeFolder(Folder.notes(5))
    const { OTEL_EXPORTER_OTLP_PROTOCOL: _, ...protobuf } = env()
    expect((await Cli.run(["sync", root], protobuf)).code).toBe(0)
    const traces = receiver.received.filter((r) => r.path === "/v1/traces")
    expect(traces.length).toBeGreaterThan(0)
    expect(traces.every((r) => r.contentType === "application/x-protobuf")).toBe(true)
    // Protobuf writes strings as their bytes.
    expect(Buffer.concat(traces.map((r) => r.body)).includes("tidemark.batch.write")).toBe(true)

    receiver.received.length = 0
    expect(
      (await Cli.run(["sync", Folder.makeFolder(Folder.notes(5))], env({ OTEL_TRACES_SAMPLER: "always_off" }))).code
    ).toBe(0)
    expect(receiver.received.filter((r) => r.path === "/v1/traces")).toEqual([])
    expect(receiver.points().find((p) => p.metric === "tidemark_items_synced_total")?.value).toBe(5)
  })

  it("a variable it cannot use is refused, naming it, without echoing its value", async () => {
    const grpc = await Cli.run(["status"], env({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }))
    expect(grpc.code).toBe(2)
    expect(grpc.stderr).toContain("OTEL_EXPORTER_OTLP_PROTOCOL")
    expect(grpc.stderr).toContain("http/protobuf or http/json")
    const sampler = await Cli.run(
      ["status"],
      env({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "2" })
    )
    expect(sampler.code).toBe(2)
    expect(sampler.stderr).toContain("OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1")
    const endpoint = await Cli.run(["status"], env({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector-token-123" }))
    expect(endpoint.code).toBe(2)
    expect(endpoint.stderr).toContain("OTEL_EXPORTER_OTLP_ENDPOINT: not an http:// or https:// URL")
    expect(endpoint.stderr).not.toContain("collector-token-123")
  })

  it("with no endpoint set nothing is sent, not even to the standard default address", async () => {
    // OpenTelemetry's default endpoint is localhost:4318: a receiver there proves silence, and
    // the same receiver named as the endpoint proves it would have heard a sync.
    const standard = await Otlp.start(4318)
    try {
      const root = Folder.makeFolder(Folder.notes(5))
      const quiet = await Cli.run(["sync", root], {
        DATABASE_URL: url,
        OTEL_SERVICE_NAME: "tidemark",
        OTEL_TRACES_SAMPLER: "always_on"
      })
      expect(quiet.code).toBe(0)
      expect(standard.received).toEqual([])
      Folder.writeFiles(root, { "new.md": "# new\n" })
      const heard = await Cli.run(["sync", root], {
        DATABASE_URL: url,
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://localhost:4318"
      })
      expect(heard.code).toBe(0)
      expect(standard.received.map((r) => r.path).sort()).toEqual(["/v1/metrics", "/v1/traces"])
    } finally {
      await standard.close()
    }
  })
})
