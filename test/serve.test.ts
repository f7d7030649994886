/**
 * `tidemark serve` and `tidemark worker --port` for real: `/metrics` parsed by
 * a Prometheus text-format parser, `/api/status` decoded by its Schema,
 * `/healthz`, the token rules beyond loopback, and a worker serving its fleet's
 * status while its job's trace goes to an OTLP receiver. Every wait is for an
 * observable event (a logged address, a row), never a fixed time.
 */
import { Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ApiStatus } from "../src/status/StatusSchema.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as Otlp from "./support/otlp.js"
import * as Serve from "./support/serve.js"
import * as TestDatabase from "./support/TestDatabase.js"

let url: string
const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: url, ...extra })

beforeAll(async () => {
  url = await TestDatabase.createDatabase("serve")
  const migrated = await Cli.run(["migrate"], env())
  expect(migrated.code, migrated.stderr).toBe(0)
}, 120_000)
afterAll(async () => {
  if (url !== undefined) await TestDatabase.dropDatabase(url)
})

/** Runs `work` against a started server, and stops it (SIGTERM) after. */
const serving = async (args: ReadonlyArray<string>, work: (base: string, child: Cli.Child) => Promise<void>) => {
  const child = Cli.tidemark(["serve", "--port", "0", ...args], env())
  try {
    await work(await Serve.addressOf(child), child)
  } finally {
    child.process.kill("SIGTERM")
    await child.finished
  }
}

const decode = Schema.decodeUnknownSync(ApiStatus)

describe("tidemark serve", () => {
  it("serves /healthz, /api/status (its Schema) and /metrics (Prometheus text), fresh at every request", async () => {
    const root = Folder.makeFolder({ ...Folder.notes(30), "bad.md": "---\n: [broken\n---\n" })
    expect((await Cli.run(["sync", root], env())).code).toBe(0)
    await serving([], async (base) => {
      expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      const health = await Serve.get(base, "/healthz")
      expect(health.status).toBe(200)
      expect(JSON.parse(health.text)).toEqual({ ok: true })

      const api = await Serve.get(base, "/api/status")
      expect(api.status).toBe(200)
      expect(api.type).toContain("application/json")
      const status = decode(JSON.parse(api.text))
      const source = status.sources.find((s) => s.id === root)!
      expect(source).toMatchObject({ kind: "dir", documents: 30, itemErrors: 1, openOp: null, lock: null })
      expect(source.recentErrors[0]?.key).toBe("bad.md")
      // `migrate` installed the job engine: the fleet's part is there, with no worker yet.
      expect(status.fleet?.workers).toEqual([])
      expect(status.fleet?.queues.map((q) => q.queue).sort()).toEqual([
        "tidemark-dead",
        "tidemark-maintain",
        "tidemark-sync"
      ])
      // The same as `tidemark status --json`.
      const cli = JSON.parse((await Cli.run(["status", "--json"], env())).stdout) as Array<{ id: string }>
      expect(status.sources.map((s) => s.id)).toEqual(cli.map((s) => s.id))

      const first = await Serve.metrics(base)
      expect(first.type).toBe("text/plain; version=0.0.4; charset=utf-8")
      const { families } = first
      expect(families.get("tidemark_source_documents")?.type).toBe("GAUGE")
      expect(Serve.sample(families, "tidemark_source_documents", { source: root })).toBe(30)
      expect(Serve.sample(families, "tidemark_source_item_errors", { source: root })).toBe(1)
      expect(Serve.sample(families, "tidemark_source_pending_items", { source: root })).toBe(0)
      const lag = Serve.sample(families, "tidemark_source_lag_seconds", { source: root })!
      expect(lag).toBeGreaterThanOrEqual(0)
      expect(lag).toBeLessThan(3600)
      for (const kind of ["search", "links", "analyze", "purge"]) {
        expect(Serve.sample(families, "tidemark_maintenance_debt", { source: root, kind })).toBeGreaterThanOrEqual(0)
      }
      expect(Serve.sample(families, "tidemark_queue_jobs", { queue: "tidemark-sync", state: "queued" })).toBe(0)
      expect(Serve.sample(families, "tidemark_workers_live")).toBe(0)
      for (const family of families.values()) expect(family.help, family.name).not.toBe("")

      // A sync meanwhile: the next scrape says so.
      Folder.writeFiles(
        root,
        Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`more/${i}.md`, `# more ${i}\n`]))
      )
      expect((await Cli.run(["sync", root], env())).code).toBe(0)
      const { families: after } = await Serve.metrics(base)
      expect(Serve.sample(after, "tidemark_source_documents", { source: root })).toBe(35)

      expect((await Serve.get(base, "/nothing-here")).status).toBe(404)
      const page = await Serve.get(base, "/")
      expect(page.status).toBe(200)
      expect(page.type).toContain("text/html")
      expect(page.text).toContain("<title>tidemark status</title>")
    })
  })

  it("beyond loopback only with a token; every path but /healthz needs it, and it is never printed", async () => {
    const refused = await Cli.run(["serve", "--host", "0.0.0.0", "--port", "0"], env())
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain("serving on 0.0.0.0 needs a token")
    const token = "serve-token-0123456789"
    await serving(["--host", "0.0.0.0", "--token", token], async (base, child) => {
      const local = base.replace("0.0.0.0", "127.0.0.1")
      for (const pathname of ["/", "/api/status", "/metrics"]) {
        expect((await Serve.get(local, pathname)).status, pathname).toBe(401)
        expect((await Serve.get(local, pathname, { authorization: "Bearer wrong-token" })).status, pathname).toBe(401)
        expect((await Serve.get(local, pathname, { authorization: `Bearer ${token}` })).status, pathname).toBe(200)
        expect((await Serve.get(local, `${pathname}?token=${token}`)).status, pathname).toBe(200)
      }
      expect((await Serve.get(local, "/healthz")).status).toBe(200)
      child.process.kill("SIGTERM")
      const finished = await child.finished
      expect(finished.stderr + finished.stdout).not.toContain(token)
    })
    // The token from the environment works the same.
    const fromEnv = Cli.tidemark(["serve", "--port", "0", "--host", "0.0.0.0"], env({ TIDEMARK_TOKEN: token }))
    const base = (await Serve.addressOf(fromEnv)).replace("0.0.0.0", "127.0.0.1")
    expect((await Serve.get(base, "/api/status")).status).toBe(401)
    expect((await Serve.get(base, "/api/status", { authorization: `Bearer ${token}` })).status).toBe(200)
    fromEnv.process.kill("SIGTERM")
    await fromEnv.finished
  })

  it("a port in use is a clear error", async () => {
    await serving([], async (base) => {
      const port = new URL(base).port
      const second = await Cli.run(["serve", "--port", port], env())
      expect(second.code).toBe(1)
      expect(second.stderr).toContain(`could not serve on http://127.0.0.1:${port}`)
    })
  })
})

describe("tidemark worker --port", () => {
  it("serves the fleet's status while it runs jobs, and each job is a trace of its own", async () => {
    const receiver = await Otlp.start()
    const root = Folder.makeFolder(Folder.notes(20))
    expect((await Cli.run(["source", "add", "served-notes", root], env())).code).toBe(0)
    const worker = Cli.tidemark(
      ["worker", "--port", "0"],
      env({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" })
    )
    try {
      const base = await Serve.addressOf(worker)
      expect((await Cli.run(["enqueue", "served-notes"], env())).code).toBe(0)
      // The job's sync finished: its op is done.
      for (;;) {
        const [row] = await Folder.query<{ n: string }>(
          url,
          "SELECT count(*) AS n FROM tidemark.ops WHERE source_id = 'served-notes' AND status = 'done'"
        )
        if (Number(row!.n) > 0) break
        await new Promise((resolve) => setImmediate(resolve))
      }
      const status = decode(JSON.parse((await Serve.get(base, "/api/status")).text))
      expect(status.fleet?.workers).toHaveLength(1)
      expect(status.fleet?.workers[0]).toMatchObject({ pid: worker.process.pid })
      expect(status.sources.find((s) => s.id === "served-notes")).toMatchObject({ documents: 20 })
      const { families } = await Serve.metrics(base)
      expect(Serve.sample(families, "tidemark_workers_live")).toBe(1)
      // Counted by this process: the job's sync.
      expect(Serve.sample(families, "tidemark_items_synced_total", { source: "served-notes" })).toBe(20)
    } finally {
      worker.process.kill("SIGTERM")
      expect((await worker.finished).code).toBe(143)
    }
    // Exported when it stopped: the job's span, with the sync inside it, the root of its own trace.
    const spans = receiver.spans()
    const job = spans.find((s) => s.name === "tidemark.job.sync")!
    expect(job, spans.map((s) => s.name).join(", ")).toBeDefined()
    expect(job.attributes).toMatchObject({ "tidemark.source": "served-notes", "tidemark.queue": "sync" })
    expect(job.parentSpanId).toBeUndefined()
    const byId = new Map(spans.map((s) => [s.spanId, s]))
    const ancestors = (span: Otlp.Span): Array<string> => {
      const parent = span.parentSpanId === undefined ? undefined : byId.get(span.parentSpanId)
      return parent === undefined ? [] : [parent.name, ...ancestors(parent)]
    }
    const sync = spans.find((s) => s.name === "tidemark.sync" && s.traceId === job.traceId)!
    expect(ancestors(sync)).toEqual(["SyncJob.run", "tidemark.job.sync"])
    await receiver.close()
  })
})
