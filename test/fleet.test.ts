/**
 * The fleet with real processes on a real PostgreSQL: `source add|list|remove`,
 * `enqueue`, `tidemark worker` on pg-boss, `workers`. Every wait is for an
 * observable event (a row, a lease, a line), never a fixed time.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import pg from "pg"
import { PgBoss } from "pg-boss"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Block from "./support/block.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as Repo from "./support/repo.js"
import * as TestDatabase from "./support/TestDatabase.js"

let url: string

beforeAll(async () => {
  url = await TestDatabase.createDatabase("fleet")
  const migrated = await Cli.run(["migrate"], { DATABASE_URL: url })
  expect(migrated.code, migrated.stderr).toBe(0)
  expect(migrated.stdout).toMatch(/job engine: pg-boss schema tidemark_boss at version \d+/)
}, 120_000)

afterAll(async () => {
  if (url !== undefined) await TestDatabase.dropDatabase(url)
})

const query = <R extends pg.QueryResultRow>(text: string, values: Array<unknown> = []) =>
  Folder.query<R>(url, text, values)

/** Polls `condition` (each poll a query) until it holds: the event a test waits for. */
const until = async (what: string, condition: () => Promise<boolean>, limitMillis = 60_000) => {
  const deadline = performance.now() + limitMillis
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`never happened: ${what}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

const folderOf = (files: number) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-fleet-"))
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(dir, `note-${String(i).padStart(4, "0")}.md`), `# ${i}\n`)
  return dir
}

/** A worker's home (its git mirrors) of its own: never the user's. */
const workerHome = () => fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-fleet-home-"))
const env = (home = workerHome()) => ({ DATABASE_URL: url, TIDEMARK_HOME: home })
const opsOf = async (source: string) =>
  Number((await query<{ n: string }>("SELECT count(*) AS n FROM tidemark.ops WHERE source_id = $1", [source]))[0]!.n)
const documentsOf = async (source: string) =>
  Number(
    (await query<{ n: string }>("SELECT count(*) AS n FROM tidemark.documents WHERE source_id = $1", [source]))[0]!.n
  )
const jobsOf = (source: string, states: ReadonlyArray<string>) =>
  query<{ state: string }>(
    "SELECT state FROM tidemark_boss.job WHERE name = 'tidemark-sync' AND singleton_key = $1 AND state::text = ANY($2::text[])",
    [source, states]
  )

const stopWorker = async (worker: Cli.Child) => {
  worker.process.kill("SIGTERM")
  return worker.finished
}

describe("tidemark source add|list|remove", () => {
  it("records a source with its options and schedule, lists it, and forgets it with its schedule", async () => {
    const dir = folderOf(2)
    const added = await Cli.run(
      ["source", "add", "team-notes", dir, "--exclude", "drafts/**", "--every", "5m", "--json"],
      env()
    )
    expect(added.code, added.stderr).toBe(0)
    expect(JSON.parse(added.stdout)).toMatchObject({
      recorded: "team-notes",
      spec: { kind: "dir", location: dir, exclude: ["drafts/**"] },
      schedule: "*/5 * * * *"
    })
    const schedules = await query<{ cron: string }>(
      "SELECT cron FROM tidemark_boss.schedule WHERE name = 'tidemark-sync' AND key = 'team-notes'"
    )
    expect(schedules.map((s) => s.cron)).toEqual(["*/5 * * * *"])

    const again = await Cli.run(["source", "add", "team-notes", dir], env())
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/source team-notes is already recorded/)

    const listed = await Cli.run(["source", "list", "--json"], env())
    expect(JSON.parse(listed.stdout)).toContainEqual(
      expect.objectContaining({ name: "team-notes", schedule: "*/5 * * * *" })
    )

    // Without --yes (and not on a terminal) it says what it would do, and does nothing.
    const asked = await Cli.run(["source", "remove", "team-notes"], env())
    expect(asked.code).toBe(2)
    expect(asked.stdout).toMatch(
      /source team-notes \(recorded for the fleet, never synced\): would forget it and its schedule/
    )
    expect(asked.stderr).toMatch(/refusing to remove source team-notes without --yes/)
    expect(await query("SELECT 1 FROM tidemark.fleet_sources WHERE name = 'team-notes'")).toHaveLength(1)

    const removed = await Cli.run(["source", "remove", "team-notes", "--yes"], env())
    expect(removed.code, removed.stderr).toBe(0)
    expect(removed.stdout).toMatch(/removed recorded source team-notes and its schedule/)
    expect(
      await query("SELECT 1 FROM tidemark_boss.schedule WHERE name = 'tidemark-sync' AND key = 'team-notes'")
    ).toEqual([])
    expect(await query("SELECT 1 FROM tidemark.fleet_sources WHERE name = 'team-notes'")).toEqual([])
  }, 60_000)

  it("refuses what a worker could not use, naming the cause", async () => {
    const url1 = await Cli.run(["source", "add", "x", "https://example.com/x.git", "--jsonl"], env())
    expect(url1.code).toBe(2)
    expect(url1.stderr).toMatch(/is a URL: only a git source may be one/)
    const every = await Cli.run(["source", "add", "x", "/tmp", "--every", "7m"], env())
    expect(every.code).toBe(2)
    expect(every.stderr).toMatch(/--every 7m does not divide an hour evenly/)
    const cron = await Cli.run(["source", "add", "x", "/tmp", "--cron", "not a cron"], env())
    expect(cron.code).toBe(2)
    expect(cron.stderr).toMatch(/--cron not a cron is not a cron expression/)
    const unknown = await Cli.run(["enqueue", "never-added"], env())
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/no recorded source named "never-added"/)
    expect(await query("SELECT 1 FROM tidemark.fleet_sources WHERE name = 'x'")).toEqual([])
  }, 60_000)
})

describe("tidemark worker", () => {
  it("five enqueues while idle make one sync; five while it runs make exactly one follow-up", async () => {
    const dir = folderOf(20)
    expect((await Cli.run(["source", "add", "burst", dir], env())).code).toBe(0)
    const queued = []
    for (let i = 0; i < 5; i++) queued.push(JSON.parse((await Cli.run(["enqueue", "burst", "--json"], env())).stdout))
    expect(queued.map((q) => q.queued)).toEqual([true, false, false, false, false])

    // The first sync is held at its last key, so that the enqueues below happen while it runs.
    const held = await Block.blockKey(url, "burst", "note-0019.md")
    const worker = Cli.tidemark(["worker", "--concurrency", "2", "--queues", "sync"], env())
    try {
      await until(
        "the sync runs under its lease",
        async () => (await query("SELECT 1 FROM tidemark.locks WHERE name = 'sync:burst'")).length > 0
      )
      await until("the job is active", async () => (await jobsOf("burst", ["active"])).length === 1)
      const during = []
      for (let i = 0; i < 5; i++) during.push(JSON.parse((await Cli.run(["enqueue", "burst", "--json"], env())).stdout))
      expect(during.map((q) => q.queued)).toEqual([true, false, false, false, false])
      await held.release()
      await until("both syncs are done", async () => (await jobsOf("burst", ["completed"])).length === 2)
      expect(await opsOf("burst")).toBe(2)
      expect(await documentsOf("burst")).toBe(20)
      expect(await jobsOf("burst", ["created", "retry", "active"])).toEqual([])
    } finally {
      await held.release()
      const stopped = await stopWorker(worker)
      expect(stopped.code, stopped.stderr).toBe(143)
    }
  }, 120_000)

  it("SIGTERM stops a sync in flight with its progress saved and hands it on; the next worker finishes it", async () => {
    // Three batches, read one at a time: the first is held, the others wait behind it.
    const dir = folderOf(1200)
    expect((await Cli.run(["source", "add", "handoff", dir, "--concurrency", "1"], env())).code).toBe(0)
    expect((await Cli.run(["enqueue", "handoff"], env())).code).toBe(0)
    const held = await Block.blockKey(url, "handoff", "note-0000.md")
    const first = Cli.tidemark(["worker", "--queues", "sync"], env())
    try {
      await until(
        // Planned, with its op open: what is stopped now is an import under way.
        "the first worker's sync has its op open",
        async () =>
          (await query("SELECT 1 FROM tidemark.ops WHERE source_id = 'handoff' AND status = 'open'")).length > 0
      )
      first.process.kill("SIGTERM")
      // The held batch cannot finish: its connection waits on the test's row until released.
      await first.errLine(/SIGTERM received/)
      await held.release()
      const stopped = await first.finished
      expect(stopped.code, stopped.stderr).toBe(143)
      expect(stopped.stderr).toMatch(
        /sync of handoff stopped \(the worker is stopping\): progress saved, a follow-up queued/
      )
      // Released, not left to expire: the next worker takes it at once.
      expect(await query("SELECT 1 FROM tidemark.locks WHERE name = 'sync:handoff'")).toEqual([])
      expect((await jobsOf("handoff", ["created"])).length).toBe(1)
      // Stopped part-way: the first batch is in, the rest is for the follow-up.
      expect(await documentsOf("handoff")).toBeLessThan(1200)
      expect(await query("SELECT 1 FROM tidemark.ops WHERE source_id = 'handoff' AND status = 'open'")).toHaveLength(1)
    } finally {
      await held.release()
      if (first.alive()) await stopWorker(first)
    }
    const second = Cli.tidemark(["worker", "--queues", "sync"], env())
    try {
      await until("the follow-up is done", async () => (await jobsOf("handoff", ["completed"])).length === 2)
      expect(await documentsOf("handoff")).toBe(1200)
      // The same op, resumed: not a second one.
      expect(await opsOf("handoff")).toBe(1)
    } finally {
      const stopped = await stopWorker(second)
      expect(stopped.code, stopped.stderr).toBe(143)
    }
  }, 120_000)

  it("fails a job whose folder this worker cannot see, deleting nothing, and `workers` shows it live", async () => {
    const dir = folderOf(5)
    expect((await Cli.run(["source", "add", "mount", dir], env())).code).toBe(0)
    expect((await Cli.run(["enqueue", "mount"], env())).code).toBe(0)
    const worker = Cli.tidemark(["worker", "--queues", "sync"], env())
    try {
      await until("the first sync is done", async () => (await jobsOf("mount", ["completed"])).length === 1)
      expect(await documentsOf("mount")).toBe(5)
      fs.renameSync(dir, `${dir}.unmounted`)
      expect((await Cli.run(["enqueue", "mount"], env())).code).toBe(0)
      const failed = await worker.errLine(/sync of mount failed/)
      expect(failed).toMatch(new RegExp(`LocationUnreachable: source mount: ${dir} does not exist on this worker`))
      expect(await documentsOf("mount")).toBe(5)

      const listed = JSON.parse((await Cli.run(["workers", "--json"], env())).stdout)
      expect(listed.workers).toContainEqual(expect.objectContaining({ pid: worker.process.pid, host: os.hostname() }))
      expect(listed.queues.map((q: { queue: string }) => q.queue).sort()).toEqual([
        "tidemark-dead",
        "tidemark-maintain",
        "tidemark-sync"
      ])
    } finally {
      const stopped = await stopWorker(worker)
      expect(stopped.code, stopped.stderr).toBe(143)
    }
    const after = JSON.parse((await Cli.run(["workers", "--json"], env())).stdout)
    expect(after.workers.map((w: { pid: number }) => w.pid)).not.toContain(worker.process.pid)
  }, 120_000)

  it("syncs a git URL from a mirror in the worker's home, fetched before each sync", async () => {
    const repo = Repo.makeRepo()
    Repo.commit(repo, { "README.md": "# one\n", "docs/a.md": "a\n" })
    expect((await Cli.run(["source", "add", "remote-repo", `file://${repo}`], env())).code).toBe(0)
    expect((await Cli.run(["enqueue", "remote-repo"], env())).code).toBe(0)
    const home = workerHome()
    const worker = Cli.tidemark(["worker", "--queues", "sync"], env(home))
    try {
      await until("the first sync is done", async () => (await jobsOf("remote-repo", ["completed"])).length === 1)
      expect(await documentsOf("remote-repo")).toBe(2)
      // Known by its URL, not by this worker's mirror: any other worker may sync it next.
      expect(await query("SELECT root FROM tidemark.sources WHERE id = 'remote-repo'")).toEqual([
        { root: `file://${repo}` }
      ])
      expect(fs.readdirSync(path.join(home, "mirrors")).filter((n) => n.endsWith(".git"))).toHaveLength(1)
      Repo.commit(repo, { "docs/b.md": "b\n", "docs/a.md": null })
      expect((await Cli.run(["enqueue", "remote-repo"], env())).code).toBe(0)
      await until("the second sync is done", async () => (await jobsOf("remote-repo", ["completed"])).length === 2)
      const keys = await query<{ key: string }>(
        "SELECT key FROM tidemark.documents WHERE source_id = 'remote-repo' ORDER BY key"
      )
      expect(keys.map((k) => k.key)).toEqual(["README.md", "docs/b.md"])
    } finally {
      const stopped = await stopWorker(worker)
      expect(stopped.code, stopped.stderr).toBe(143)
    }
    // Another machine: a worker of another home clones its own mirror and syncs on.
    Repo.commit(repo, { "docs/c.md": "c\n" })
    expect((await Cli.run(["enqueue", "remote-repo"], env())).code).toBe(0)
    const elsewhere = Cli.tidemark(["worker", "--queues", "sync"], env())
    try {
      await until("the third sync is done", async () => (await jobsOf("remote-repo", ["completed"])).length === 3)
      expect(await documentsOf("remote-repo")).toBe(3)
    } finally {
      const stopped = await stopWorker(elsewhere)
      expect(stopped.code, stopped.stderr).toBe(143)
    }
  }, 120_000)

  it("a SIGKILLed worker's sync is resumed by another worker once pg-boss sees its heartbeat lapse", async () => {
    const dir = folderOf(1200)
    expect((await Cli.run(["source", "add", "killed", dir, "--concurrency", "1"], env())).code).toBe(0)
    expect((await Cli.run(["enqueue", "killed"], env())).code).toBe(0)
    const held = await Block.blockKey(url, "killed", "note-0000.md")
    const first = Cli.tidemark(["worker", "--queues", "sync"], env())
    const second = Cli.tidemark(["worker", "--queues", "sync"], env())
    try {
      await until(
        "a worker syncs under the lease",
        async () => (await query("SELECT 1 FROM tidemark.locks WHERE name = 'sync:killed'")).length > 0
      )
      const holder = (await query<{ pid: number }>("SELECT pid FROM tidemark.locks WHERE name = 'sync:killed'"))[0]!
      const [victim, survivor] = holder.pid === first.process.pid ? [first, second] : [second, first]
      victim.process.kill("SIGKILL")
      await victim.finished
      await held.release()
      await until(
        "the survivor finishes the job",
        async () => (await jobsOf("killed", ["completed"])).length === 1,
        90_000
      )
      expect(await documentsOf("killed")).toBe(1200)
      expect(await opsOf("killed")).toBe(1)
      expect(survivor.alive()).toBe(true)
    } finally {
      await held.release()
      for (const worker of [first, second]) if (worker.alive()) await stopWorker(worker)
    }
  }, 150_000)

  it("a sync that would outlast its job's expiry saves its progress and queues its follow-up before it", async () => {
    const dir = folderOf(1200)
    expect((await Cli.run(["source", "add", "long", dir, "--concurrency", "1"], env())).code).toBe(0)
    // A job that expires 2 minutes and 3 seconds after it starts: the worker stops it after 3 s.
    const boss = new PgBoss({
      connectionString: url,
      schema: "tidemark_boss",
      supervise: false,
      schedule: false,
      migrate: false
    })
    boss.on("error", () => {})
    await boss.start()
    await boss.send("tidemark-sync", { source: "long" }, { singletonKey: "long", expireInSeconds: 123 })
    await boss.stop({ graceful: false, close: true })
    const held = await Block.blockKey(url, "long", "note-0000.md")
    const worker = Cli.tidemark(["worker", "--queues", "sync"], env())
    try {
      await worker.errLine(/sync of long: its job expiry is near: stopping after the batches in flight/)
      await held.release()
      await worker.errLine(/sync of long stopped \(its job expiry is near\): progress saved, a follow-up queued/)
      await until("the follow-up is done", async () => (await jobsOf("long", ["completed"])).length === 2)
      expect(await documentsOf("long")).toBe(1200)
      expect(await opsOf("long")).toBe(1)
    } finally {
      await held.release()
      const stopped = await stopWorker(worker)
      expect(stopped.code, stopped.stderr).toBe(143)
    }
  }, 120_000)
})
