import * as fs from "node:fs"
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import pg from "pg"
import { ExitCode, exitCodeOf } from "../src/cli/ExitCode.js"
import { scrubSecrets } from "../src/log/redact.js"
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
      backfills: [{ _tag: "AlreadyDone", step: "documents.title", version: 2 }],
      // The fleet's job engine, installed by the first run.
      jobEngine: { schema: "tidemark_boss", version: expect.any(Number) }
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
    expect(flag.code).toBe(ExitCode.usage)
    expect(flag.stderr).toContain("--main-pool-size 0 is out of range")
  })

  it("a malformed database URL is a usage error, named without its secret, before anything starts", async () => {
    const home = Cli.freshHome()
    for (const [env, origin] of [
      [{ DATABASE_URL: "not a url:secret-in-url" }, "DATABASE_URL"],
      [{ DATABASE_URL: "mysql://u:secret-in-url@h/x" }, "DATABASE_URL"],
      [{ DIRECT_DATABASE_URL: "::secret-in-url::" }, "DIRECT_DATABASE_URL"]
    ] as const) {
      const result = await Cli.run(["status"], { ...env, TIDEMARK_HOME: home })
      expect(result.code, result.stderr).toBe(ExitCode.usage)
      expect(result.stderr).toMatch(new RegExp(`^tidemark: error: ${origin} is not a usable PostgreSQL URL: `))
      expect(result.stderr).toMatch(/\n\s+hint: use the form postgresql:\/\//)
      expect(result.stderr).not.toContain("secret-in-url")
      noStackTrace(result.stderr)
    }
    const flag = await Cli.run(["status", "--database-url", "postgres//missing-colon"], { TIDEMARK_HOME: home })
    expect(flag.code).toBe(ExitCode.usage)
    expect(flag.stderr).toContain("--database-url is not a usable PostgreSQL URL")
    // Nothing started: the embedded server was never set up in the home folder.
    expect(fs.readdirSync(home)).toEqual([])
  })

  it("bad flag values are usage errors before the embedded server starts", async () => {
    const home = Cli.freshHome()
    const folder = fs.mkdtempSync(`${home}-folder`)
    for (const [args, message] of [
      [["--timeout", "abc"], "--timeout abc is not a duration"],
      [["--timeout", "0s"], "--timeout 0s is too short"],
      [["--lease-ttl", "1ms"], "--lease-ttl"],
      [["--max-size-mb", "-1"], "--max-size-mb -1 is out of range"],
      [["--concurrency", "0"], "--concurrency 0 is out of range"],
      [["--state-flush-every", "5ms"], "--state-flush-every 5ms is too short"]
    ] as const) {
      const result = await Cli.run(["sync", folder, ...args], { TIDEMARK_HOME: home })
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(ExitCode.usage)
      expect(result.stderr).toContain(message)
    }
    expect(fs.readdirSync(home)).toEqual([])
  })

  it("a server that never answers fails within its connect bound, saying where and retrying aloud", async () => {
    // Nothing listens on port 1: every connection is refused.
    const unreachable = "postgresql://u:secret-pw@127.0.0.1:1/x"
    const result = await Cli.run(["sync", fs.mkdtempSync(`${Cli.freshHome()}-folder`)], { DATABASE_URL: unreachable })
    expect(result.code).toBe(ExitCode.failure)
    const lines = result.stderr.trim().split("\n")
    // Quiet for the first seconds, then one line per retry, naming host and port.
    const retries = lines.filter((l) => l.startsWith("tidemark: warn: database unavailable at 127.0.0.1:1 (main pool)"))
    expect(retries.length).toBeGreaterThanOrEqual(1)
    for (const line of retries) expect(line).toMatch(/ECONNREFUSED.*; retrying in [\d.]+ (ms|s) \(attempt \d+\)$/)
    expect(lines.at(-2)).toMatch(/^tidemark: error: database unavailable: connect ECONNREFUSED/)
    expect(lines.at(-1)).toMatch(/^\s+hint: check that the server is running/)
    expect(result.stderr).not.toContain("secret-pw")
    // The connect retries stop after a bounded number of attempts (the bound is ~10 s of retrying).
    const attempts = Number(/attempt (\d+)\)$/.exec(retries.at(-1)!)![1])
    expect(attempts).toBeLessThanOrEqual(13)
    // --verbose shows the quiet first retries too.
    const verbose = await Cli.run(["status", "--verbose"], { DATABASE_URL: unreachable })
    expect(verbose.stderr).toMatch(
      /tidemark: debug: database unavailable at 127.0.0.1:1 \(main pool\): .*\(attempt 2\)/
    )
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
      const child = Cli.tidemark(["db", "--verbose"], { DATABASE_URL: `postgresql://u:pw@127.0.0.1:${port}/db` })
      while (seen.length === before) await new Promise((resolve) => setTimeout(resolve, 20))
      child.process.kill(signal)
      return await child.finished
    }

    it("SIGTERM exits 143 promptly, mid-connect", async () => {
      const result = await interrupted("SIGTERM")
      expect(result.code).toBe(ExitCode.sigterm)
      expect(result.stderr).toContain("SIGTERM received")
      // The main pool's connect timeout is 15 s: a prompt exit did not wait it out (a timed-out
      // connect would be retried, and --verbose logs every retry).
      expect(result.stderr).not.toMatch(/timeout exceeded|retrying/)
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
