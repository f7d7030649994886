import * as fs from "node:fs"
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import pg from "pg"
import { ExitCode, exitCodeOf } from "../src/cli/ExitCode.js"
import { scrubSecrets } from "../src/cli/redact.js"
import * as Migrations from "../src/db/Migrations.js"
import { Cause, Exit, FiberId, Redacted } from "effect"
import * as Cli from "./support/cli.js"
import * as TestDatabase from "./support/TestDatabase.js"

const withPassword = (url: string, password: string) => {
  const parsed = new URL(url)
  parsed.password = password
  return parsed.toString()
}

/** The shipped migrations' names, in order. */
const shipped = fs
  .readdirSync(Migrations.defaultMigrationsDir)
  .filter((f) => f.endsWith(".sql"))
  .sort()
  .map((f) => f.replace(/\.sql$/, ""))

const noStackTrace = (text: string) => expect(text).not.toMatch(/^\s+at\s/m)

describe("tidemark CLI", () => {
  let url: string
  beforeAll(async () => {
    url = await TestDatabase.createDatabase("cli")
  })
  afterAll(() => TestDatabase.dropDatabase(url))

  it("--version and --help", async () => {
    const version = await Cli.run(["--version"])
    expect(version.code).toBe(0)
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
    const help = await Cli.run(["--help"])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain("migrate")
    expect(help.stdout).toContain("db")
  })

  it("a usage error exits 2", async () => {
    expect((await Cli.run(["no-such-command"])).code).toBe(ExitCode.usage)
    expect((await Cli.run(["db", "--no-such-flag"])).code).toBe(ExitCode.usage)
  })

  it("migrate applies once, then reports the schema up to date; db reports an external server without its password", async () => {
    const secretUrl = withPassword(url, "s3cret-pw")
    const first = await Cli.run(["migrate"], { DATABASE_URL: secretUrl })
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toContain(`applied ${shipped.length}: ${shipped.join(", ")}`)
    expect(first.stdout).toContain("backfills: documents.title v2: done")
    const second = await Cli.run(["migrate", "--json"], { DATABASE_URL: secretUrl })
    expect(JSON.parse(second.stdout)).toEqual({
      applied: [],
      total: shipped.length,
      backfills: [{ _tag: "AlreadyDone", step: "documents.title", version: 2 }]
    })

    const db = await Cli.run(["db", "--json"], { DATABASE_URL: secretUrl, TIDEMARK_MAIN_POOL_SIZE: "5" })
    expect(db.code, db.stderr).toBe(0)
    const report = JSON.parse(db.stdout) as {
      location: { _tag: string; main: { database: string } }
      pools: Array<{ role: string; maxConnections: number; applicationName: string }>
      serverVersion: string
    }
    expect(report.location._tag).toBe("External")
    expect(report.location.main.database).toBe(new URL(url).pathname.slice(1))
    expect(report.pools).toEqual([
      { role: "main", maxConnections: 5, applicationName: "tidemark:main" },
      { role: "direct", maxConnections: 3, applicationName: "tidemark:direct" }
    ])
    expect(report.serverVersion).toMatch(/^\d+/)
    for (const output of [first, second, db]) expect(output.stdout + output.stderr).not.toContain("s3cret-pw")
  })

  it("two migrate processes racing on a fresh database both succeed and apply each migration once", async () => {
    const fresh = await TestDatabase.createDatabase("cli_race")
    try {
      const results = await Promise.all([0, 1, 2].map(() => Cli.run(["migrate", "--json"], { DATABASE_URL: fresh })))
      for (const result of results) expect(result.code, result.stderr).toBe(0)
      const applied = results.flatMap((r) => (JSON.parse(r.stdout) as { applied: Array<string> }).applied)
      expect(applied.sort()).toEqual(shipped)
      const client = new pg.Client({ connectionString: fresh })
      await client.connect()
      const rows = await client.query("SELECT id FROM tidemark.schema_migrations")
      await client.end()
      expect(rows.rowCount).toBe(shipped.length)
    } finally {
      await TestDatabase.dropDatabase(fresh)
    }
  })

  it("a failure is one line plus a hint, exit 1, with no password, URL or stack trace", async () => {
    const missing = withPassword(TestDatabase.withDatabaseName(url, "no_such_database_here"), "hunter2-secret")
    const result = await Cli.run(["db"], { DATABASE_URL: missing })
    expect(result.code).toBe(ExitCode.failure)
    const lines = result.stderr.trim().split("\n")
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^tidemark: error: .*no_such_database_here.*does not exist/)
    expect(lines[1]).toMatch(/^\s+hint: /)
    expect(result.stderr).not.toContain("hunter2-secret")
    expect(result.stderr).not.toContain(missing)
    noStackTrace(result.stderr)
  })

  it("bad configuration is reported as such", async () => {
    const result = await Cli.run(["db"], { DATABASE_URL: url, TIDEMARK_MAIN_POOL_SIZE: "lots" })
    expect(result.code).toBe(ExitCode.failure)
    expect(result.stderr).toMatch(/^tidemark: error: configuration: .*TIDEMARK_MAIN_POOL_SIZE/)
    noStackTrace(result.stderr)
    const flag = await Cli.run(["db", "--main-pool-size", "0"], { DATABASE_URL: url })
    expect(flag.code).toBe(ExitCode.failure)
    expect(flag.stderr).toContain("--main-pool-size 0 is out of range")
  })

  describe("signals", () => {
    // A server that accepts connections and never answers: the CLI hangs in connect.
    let stall: net.Server
    let port: number
    const seen: Array<net.Socket> = []
    beforeAll(async () => {
      stall = net.createServer((socket) => seen.push(socket))
      await new Promise<void>((resolve) => stall.listen(0, "127.0.0.1", resolve))
      port = (stall.address() as net.AddressInfo).port
    })
    afterAll(async () => {
      for (const socket of seen) socket.destroy()
      await new Promise((resolve) => stall.close(resolve))
    })

    const interrupted = async (signal: NodeJS.Signals) => {
      const before = seen.length
      const child = Cli.tidemark(["db"], { DATABASE_URL: `postgresql://u:pw@127.0.0.1:${port}/db` })
      while (seen.length === before) await new Promise((resolve) => setTimeout(resolve, 20))
      const signalledAt = performance.now()
      child.process.kill(signal)
      const result = await child.finished
      return { ...result, seconds: (performance.now() - signalledAt) / 1000 }
    }

    it("SIGTERM exits 143 promptly, mid-connect", async () => {
      const result = await interrupted("SIGTERM")
      expect(result.code).toBe(ExitCode.sigterm)
      // The main pool's connect timeout is 15 s: a prompt exit did not wait it out.
      expect(result.seconds).toBeLessThan(5)
    })

    it("SIGINT exits 130", async () => {
      const result = await interrupted("SIGINT")
      expect(result.code).toBe(ExitCode.sigint)
    })
  })
})

describe("exit codes", () => {
  it("map outcomes to the documented codes", () => {
    expect(exitCodeOf(Exit.succeed(ExitCode.ok), undefined)).toBe(0)
    expect(exitCodeOf(Exit.succeed(ExitCode.partial), undefined)).toBe(75)
    expect(exitCodeOf(Exit.failCause(Cause.interrupt(FiberId.none)), "SIGTERM")).toBe(143)
    expect(exitCodeOf(Exit.failCause(Cause.interrupt(FiberId.none)), "SIGINT")).toBe(130)
    expect(exitCodeOf(Exit.die(new Error("bug")), undefined)).toBe(1)
  })
})

describe("scrubSecrets", () => {
  it("removes passwords from URLs and keyword strings, and any known secret", () => {
    expect(scrubSecrets("connect postgresql://alice:pa55@db.example:5432/x failed")).toBe(
      "connect postgresql://alice:***@db.example:5432/x failed"
    )
    expect(scrubSecrets("host=db password=pa55 user=alice")).toBe("host=db password=*** user=alice")
    const secret = Redacted.make("postgresql://bob:t0ps3cret@h/db")
    expect(scrubSecrets("bad url postgresql://bob:t0ps3cret@h/db and t0ps3cret again", [secret])).toBe(
      "bad url <redacted> and *** again"
    )
  })
})
