import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import pg from "pg"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as TestDatabase from "./support/TestDatabase.js"

const worker = path.join(Cli.repoRoot, "test", "fixtures", "lease-worker.mjs")

interface Event {
  readonly event: string
  readonly pid: number
  readonly token?: number
  readonly n?: number
  readonly tag?: string
  readonly reason?: string
  readonly holderPid?: number
}

describe("leases held by real processes", () => {
  let url: string
  const query = <R extends pg.QueryResultRow>(text: string, values: Array<unknown> = []) =>
    Folder.query<R>(url, text, values)
  const writesBy = async (token: number) =>
    Number((await query<{ n: string }>("SELECT count(*) AS n FROM lease_writes WHERE token = $1", [token]))[0]!.n)

  beforeAll(async () => {
    url = await TestDatabase.createDatabase("lease_processes")
    const migrated = await Cli.run(["migrate"], { DATABASE_URL: url })
    expect(migrated.code, migrated.stderr).toBe(0)
    await query(
      "CREATE TABLE lease_writes (id bigserial PRIMARY KEY, token bigint NOT NULL, pid int NOT NULL, n int NOT NULL)"
    )
  })
  afterAll(() => TestDatabase.dropDatabase(url))

  const startWorker = (name: string, env: Record<string, string> = {}) =>
    Cli.start(worker, [], { DATABASE_URL: url, LEASE_NAME: name, ...env })
  const event = async (child: Cli.Child, name: string): Promise<Event> =>
    JSON.parse(await child.line(new RegExp(`"event":"${name}"`))) as Event

  it("a second process gets LockBusy naming the holder; SIGTERM releases at once", async () => {
    const a = startWorker("contend")
    const acquired = await event(a, "acquired")
    const b = await startWorker("contend").finished
    expect(b.code).toBe(1)
    const busy = JSON.parse(b.stdout.trim()) as Event
    expect(busy).toMatchObject({ event: "failed", tag: "LockBusy", holderPid: a.process.pid })

    a.process.kill("SIGTERM")
    await a.finished
    // No waiting: the lease is free the moment the holder is gone.
    const c = startWorker("contend")
    const next = await event(c, "acquired")
    expect(next.token!).toBeGreaterThan(acquired.token!)
    c.process.kill("SIGTERM")
    await c.finished
  })

  it("a holder SIGKILLed on this machine is taken over at once by the next process", async () => {
    const a = startWorker("killed")
    const aLease = await event(a, "acquired")
    a.process.kill("SIGKILL")
    await a.finished
    // No wait and no expiry: the dead holder's lease (ttl 30 s) is provably abandoned.
    const b = startWorker("killed")
    const bLease = await event(b, "acquired")
    expect(bLease.token!).toBeGreaterThan(aLease.token!)
    b.process.kill("SIGTERM")
    await b.finished
  })

  it("a holder SIGKILLed while another process waits is taken over within one poll", async () => {
    const a = startWorker("killed-waited", { LEASE_TTL_MS: "30000" })
    await event(a, "acquired")
    const b = startWorker("killed-waited", { LEASE_WAIT_MS: "60000" })
    const [held] = await query<{ expires_at: Date }>("SELECT expires_at FROM tidemark.locks WHERE name = $1", [
      "killed-waited"
    ])
    a.process.kill("SIGKILL")
    await event(b, "acquired")
    // b took the lease over at one of its polls, not after a's 30 s lease expired (both by the database's clock).
    const [taken] = await query<{ acquired_at: Date }>("SELECT acquired_at FROM tidemark.locks WHERE name = $1", [
      "killed-waited"
    ])
    expect(taken!.acquired_at.getTime()).toBeLessThan(held!.expires_at.getTime())
    b.process.kill("SIGTERM")
    await b.finished
  })

  /**
   * Stops holder a (SIGSTOP) while it writes, lets b take the lease over once
   * it expired, resumes a, and returns how a ended. Asserts that none of a's
   * writes landed after the takeover, and that b was never disturbed.
   */
  const stopTakeOverResume = async (name: string, aEnv: Record<string, string> = {}) => {
    // a's lease is short, so that it expires soon after a is frozen; b's is long, so that b
    // keeps it whatever else the machine is doing.
    const a = startWorker(name, { LEASE_TTL_MS: "6000", WRITE_EVERY_MS: "50", ...aEnv })
    const aLease = await event(a, "acquired")
    await a.line(/"n":5\b/)
    a.process.kill("SIGSTOP")
    const b = startWorker(name, { LEASE_TTL_MS: "30000", WRITE_EVERY_MS: "50", LEASE_WAIT_MS: "60000" })
    // a may have been stopped inside a write transaction, holding the lease row
    // FOR SHARE: then the takeover waits for that transaction, which needs a.
    const bLease = await Promise.race([
      event(b, "acquired"),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 20000))
    ])
    if (bLease === undefined) a.process.kill("SIGCONT")
    const granted = bLease ?? (await event(b, "acquired"))
    expect(granted.token!).toBeGreaterThan(aLease.token!)
    const landedBeforeTakeover = await writesBy(aLease.token!)
    await b.line(/"n":3\b/)

    a.process.kill("SIGCONT")
    const aDone = await a.finished
    expect(aDone.code).toBe(1)
    expect(await writesBy(aLease.token!)).toBe(landedBeforeTakeover)
    await b.line(/"n":10\b/)
    b.process.kill("SIGTERM")
    await b.finished
    return JSON.parse(aDone.stdout.trim().split("\n").at(-1)!) as Event
  }

  it("a holder stopped past its lease is taken over; after SIGCONT none of its writes land and it stops", async () => {
    const failure = await stopTakeOverResume("stopped")
    expect(["LockLost", "FencedOut"]).toContain(failure.tag)
  })

  it("a stale holder that ignores the loss of its lease is stopped by the fence on its next write", async () => {
    const failure = await stopTakeOverResume("stale", { IGNORE_LOST: "1" })
    expect(failure.tag).toBe("FencedOut")
  })

  it("tidemark lock list shows a held lease; lock release --force removes it and the holder stops", async () => {
    const a = startWorker("operator", { LEASE_TTL_MS: "15000" })
    const acquired = await event(a, "acquired")

    const list = await Cli.run(["lock", "list", "--json"], { DATABASE_URL: url })
    expect(list.code, list.stderr).toBe(0)
    const rows = JSON.parse(list.stdout) as Array<Record<string, unknown>>
    const row = rows.find((r) => r["name"] === "operator")
    expect(row).toMatchObject({ pid: a.process.pid, token: acquired.token })
    expect(row!["expiresInSeconds"]).toBeGreaterThan(0)
    expect(row!["heartbeatAgeSeconds"]).toBeGreaterThanOrEqual(0)
    expect(row!["heartbeatAgeSeconds"]).toBeLessThan(15)
    const text = await Cli.run(["lock", "list"], { DATABASE_URL: url })
    expect(text.stdout).toMatch(/^NAME\s+HOLDER\s+TOKEN\s+AGE\s+HEARTBEAT\s+EXPIRES IN$/m)
    expect(text.stdout).toContain(`pid ${a.process.pid}`)

    const refused = await Cli.run(["lock", "release", "operator"], { DATABASE_URL: url })
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain("--force")

    const released = await Cli.run(["lock", "release", "operator", "--force"], { DATABASE_URL: url })
    expect(released.code, released.stderr).toBe(0)
    expect(released.stdout).toContain(`released operator: held by pid ${a.process.pid}`)
    // The holder finds its lease gone at the next renewal (every 5 s) and stops: released, not taken over.
    const aDone = await a.finished
    expect(aDone.code).toBe(1)
    expect(JSON.parse(aDone.stdout.trim().split("\n").at(-1)!)).toMatchObject({ tag: "LockLost", reason: "released" })
  })
})
