import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import pg from "pg"
import { embeddedPaths, socketUrl } from "../src/db/embedded/paths.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"

const holder = path.join(Cli.repoRoot, "test", "fixtures", "hold-embedded.mjs")

interface DbReport {
  readonly location: {
    readonly _tag: string
    readonly adopted: boolean
    readonly serverPid: number
    readonly home: string
  }
  readonly migrations: { readonly pending: ReadonlyArray<string> }
}

const dbReport = async (home: string): Promise<DbReport> => {
  const result = await Cli.run(["db", "--json"], { TIDEMARK_HOME: home })
  expect(result.stderr).not.toContain("error")
  expect(result.code).toBe(0)
  return JSON.parse(result.stdout) as DbReport
}

const holdServer = async (home: string) => {
  const child = Cli.start(holder, [], { TIDEMARK_HOME: home })
  const ready = JSON.parse(await child.line(/"ready":true/)) as { serverPid: number; adopted: boolean }
  return { child, ...ready }
}

describe("embedded PostgreSQL", () => {
  it("starts on first use, listens on a private Unix socket only, and stops after the last process", async () => {
    const home = Cli.freshHome()
    const held = await holdServer(home)
    expect(held.adopted).toBe(false)
    expect(Cli.serverPid(home)).toBe(held.serverPid)

    const paths = embeddedPaths(home)
    for (const dir of [paths.home, paths.dataDir, paths.socketDir]) {
      expect((fs.statSync(dir).mode & 0o777).toString(8)).toBe("700")
    }
    const client = new pg.Client({ connectionString: socketUrl(paths) })
    await client.connect()
    const listen = await client.query<{ listen_addresses: string }>("SHOW listen_addresses")
    await client.end()
    expect(listen.rows[0]?.listen_addresses).toBe("")

    held.child.process.kill("SIGTERM")
    await held.child.finished
    expect(Cli.serverPid(home)).toBeUndefined()
    expect(Cli.isProcessRunning(held.serverPid)).toBe(false)
  })

  it("adopts a server orphaned by a SIGKILLed owner, and stops it when the adopter is the last one out", async () => {
    const home = Cli.freshHome()
    const held = await holdServer(home)
    held.child.process.kill("SIGKILL")
    const killed = await held.child.finished
    expect(killed.signal).toBe("SIGKILL")
    // The orphan keeps running, holding postmaster.pid.
    expect(Cli.serverPid(home)).toBe(held.serverPid)

    const report = await dbReport(home)
    expect(report.location._tag).toBe("Embedded")
    expect(report.location.adopted).toBe(true)
    expect(report.location.serverPid).toBe(held.serverPid)
    expect(report.migrations.pending).toEqual([])
    expect(Cli.serverPid(home)).toBeUndefined()
  })

  it("is shared by concurrent CLI processes and left running while another process uses it", async () => {
    const home = Cli.freshHome()
    const held = await holdServer(home)
    const reports = await Promise.all([dbReport(home), dbReport(home), dbReport(home)])
    for (const report of reports) {
      expect(report.location.adopted).toBe(true)
      expect(report.location.serverPid).toBe(held.serverPid)
    }
    // The CLIs are gone; the holder still uses the server.
    expect(Cli.serverPid(home)).toBe(held.serverPid)
    held.child.process.kill("SIGTERM")
    await held.child.finished
    expect(Cli.serverPid(home)).toBeUndefined()
  })

  it("concurrent first runs on an empty home initialize once and agree on one server", async () => {
    const home = Cli.freshHome()
    const runs = await Promise.all([0, 1, 2].map(() => Cli.run(["db", "--json"], { TIDEMARK_HOME: home })))
    for (const result of runs) expect(result.code, result.stderr).toBe(0)
    const starts = runs.map((r) => (r.stderr.match(/embedded PostgreSQL \d+ started/g) ?? []).length)
    const stops = runs.map((r) => (r.stderr.match(/embedded PostgreSQL stopped/g) ?? []).length)
    expect(starts.reduce((a, b) => a + b)).toBeGreaterThanOrEqual(1)
    expect(stops.reduce((a, b) => a + b)).toBe(starts.reduce((a, b) => a + b))
    // Each start and stop is one line; PostgreSQL's own output stays in its log file.
    for (const result of runs) {
      expect(
        result.stderr
          .split("\n")
          .filter((line) => line.trim() !== "")
          .every((line) => line.startsWith("tidemark: "))
      ).toBe(true)
    }
    expect(Cli.serverPid(home)).toBeUndefined()
    expect(fs.readdirSync(home).filter((entry) => entry.startsWith("pgdata.init-"))).toEqual([])
  })

  it("runs the main job with no configuration: sync a folder into a fresh embedded server", async () => {
    const home = Cli.freshHome()
    const folder = Folder.makeFolder(Folder.notes(200))
    const synced = await Cli.run(["sync", folder, "--json"], { TIDEMARK_HOME: home })
    expect(synced.code, synced.stderr).toBe(0)
    expect(JSON.parse(synced.stdout)).toMatchObject({ imported: 200, failed: 0 })
    expect(synced.stderr).toMatch(/embedded PostgreSQL \d+ started in /)
    const status = await Cli.run(["status", "--json"], { TIDEMARK_HOME: home })
    expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ id: folder, documents: 200, openOp: null })])
    expect(Cli.serverPid(home)).toBeUndefined()
  })

  it("a sync hands the server on to its background payer: the payer adopts it, and the last one out stops it", async () => {
    const home = Cli.freshHome()
    const folder = Folder.makeFolder(Folder.notes(200))
    const synced = await Cli.run(["sync", folder, "--json"], {
      TIDEMARK_HOME: home,
      TIDEMARK_MAINTENANCE: "background"
    })
    expect(synced.code, synced.stderr).toBe(0)
    expect(synced.stderr).toMatch(/embedded PostgreSQL \d+ started in /)
    const log = path.join(home, "log", "maintain.log")
    // The payer's report is its last line; then it detaches and stops the server.
    while (
      !(fs.existsSync(log) && fs.readFileSync(log, "utf8").includes("documents indexed")) ||
      Cli.serverPid(home) !== undefined
    )
      await new Promise((resolve) => setTimeout(resolve, 50))
    const written = fs.readFileSync(log, "utf8")
    expect(written).toContain(`${folder}: search 200 documents indexed`)
    // Registered by the sync before it detached, the payer found the server up: no second start.
    expect(written).not.toMatch(/embedded PostgreSQL \d+ started in /)
    expect(fs.readdirSync(embeddedPaths(home).clientsDir)).toEqual([])
  })
})
