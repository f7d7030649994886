import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { embeddedPaths } from "../src/db/embedded/paths.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as TestDatabase from "./support/TestDatabase.js"

interface ServerState {
  readonly running: boolean
  readonly pid: number | null
  readonly port: number
  readonly startedBy: string | null
  readonly socketUrl: string
  readonly tcpUrl: string | null
}

/** A port nobody listens on now (the kernel's choice). */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

const psql = (url: string, sql: string) =>
  execFileSync("psql", ["--dbname", url, "--no-psqlrc", "-tAc", sql], { encoding: "utf8" }).trim()

describe("tidemark db start|stop|url and psql (real CLI, real PostgreSQL, real psql)", () => {
  const homes: Array<string> = []
  const home = () => {
    const dir = Cli.freshHome()
    homes.push(dir)
    return dir
  }
  const state = async (env: Record<string, string>) => {
    const result = await Cli.run(["db", "url", "--json"], env)
    expect(result.code, result.stderr).toBe(0)
    return JSON.parse(result.stdout) as ServerState
  }

  afterAll(async () => {
    // Whatever a failed test left running.
    for (const dir of homes) {
      const paths = embeddedPaths(dir)
      if (Cli.serverPid(dir) === undefined) continue
      if (!fs.existsSync(paths.ownerFile)) {
        fs.writeFileSync(
          paths.ownerFile,
          JSON.stringify({ by: "db start", pid: Cli.serverPid(dir), port: 5432, tcp: false })
        )
      }
      await Cli.run(["db", "stop"], { TIDEMARK_HOME: dir })
    }
  })

  it("db start keeps a server with a loopback TCP port running across other commands until db stop; psql connects", async () => {
    const env = { TIDEMARK_HOME: home() }
    const before = await Cli.run(["db", "url"], env)
    expect(before.code).toBe(0)
    expect(before.stderr).toContain("not running: start it with tidemark db start")
    expect(Cli.serverPid(env.TIDEMARK_HOME)).toBeUndefined()

    const port = await freePort()
    const started = await Cli.run(["db", "start", "--port", String(port)], env)
    expect(started.code, started.stderr).toBe(0)
    expect(started.stdout).toContain("started; it runs until tidemark db stop")
    const running = await state(env)
    expect(running).toMatchObject({ running: true, port, startedBy: "db start" })
    const paths = embeddedPaths(env.TIDEMARK_HOME)
    expect((fs.statSync(paths.passwordFile).mode & 0o777).toString(8)).toBe("600")
    expect((fs.statSync(paths.passFile).mode & 0o777).toString(8)).toBe("600")

    // psql over TCP (password from the password file, or in the URL) and over the socket.
    const tcp = (await Cli.run(["db", "url", "--tcp"], env)).stdout.trim()
    expect(tcp).toBe(running.tcpUrl)
    expect(tcp).not.toContain(fs.readFileSync(paths.passwordFile, "utf8").trim())
    expect(psql(tcp, "SELECT current_user")).toBe("tidemark")
    const withPassword = (await Cli.run(["db", "url", "--tcp", "--show-password"], env)).stdout.trim()
    expect(psql(withPassword, "SELECT inet_server_addr()::text")).toBe("127.0.0.1/32")
    const socket = (await Cli.run(["db", "url"], env)).stdout.trim()
    expect(psql(socket, "SELECT 2")).toBe("2")
    // A wrong password is refused: TCP is not open to anyone who can reach the port.
    expect(() => psql(`postgresql://tidemark:wrong@127.0.0.1:${port}/tidemark`, "SELECT 1")).toThrow()

    // Other commands use it and leave it running.
    const notes = Folder.makeFolder(Folder.notes(5))
    const synced = await Cli.run(["sync", notes, "--json"], env)
    expect(synced.code, synced.stderr).toBe(0)
    expect(await state(env)).toMatchObject({ running: true, pid: running.pid })
    const counted = await Cli.run(["psql", "--", "-tAc", "SELECT count(*) FROM tidemark.documents"], env)
    expect(counted.code, counted.stderr).toBe(0)
    expect(counted.stdout.trim()).toBe("5")
    expect(psql(tcp, "SELECT count(*) FROM tidemark.documents")).toBe("5")
    expect(Cli.serverPid(env.TIDEMARK_HOME)).toBe(running.pid)

    const stopped = await Cli.run(["db", "stop"], env)
    expect(stopped.code, stopped.stderr).toBe(0)
    expect(stopped.stdout).toContain("stopped")
    expect(await state(env)).toMatchObject({ running: false })
    expect(Cli.isProcessRunning(running.pid!)).toBe(false)
    expect((await Cli.run(["db", "stop"], env)).stdout).toContain("not running")
  })

  it("a server tidemark did not start is never stopped by a command, nor by db stop", async () => {
    const env = { TIDEMARK_HOME: home() }
    expect((await Cli.run(["db", "start"], env)).code).toBe(0)
    const paths = embeddedPaths(env.TIDEMARK_HOME)
    // Without tidemark's record beside it, the server is someone else's (started by hand).
    const record = fs.readFileSync(paths.ownerFile, "utf8")
    fs.rmSync(paths.ownerFile)
    const pid = Cli.serverPid(env.TIDEMARK_HOME)!

    const status = await Cli.run(["db"], env)
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toContain("not started by tidemark")
    expect(Cli.serverPid(env.TIDEMARK_HOME)).toBe(pid)
    const refused = await Cli.run(["db", "stop"], env)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain("was not started by tidemark: left running")
    expect(refused.stderr).toContain("pg_ctl stop")
    expect(Cli.serverPid(env.TIDEMARK_HOME)).toBe(pid)

    fs.writeFileSync(paths.ownerFile, record)
    expect((await Cli.run(["db", "stop"], env)).code).toBe(0)
    expect(Cli.serverPid(env.TIDEMARK_HOME)).toBeUndefined()
  })

  it("a server a command started stops with it; db start on it keeps it; --port on a server without TCP is refused", async () => {
    const env = { TIDEMARK_HOME: home() }
    expect((await Cli.run(["db"], env)).code).toBe(0)
    expect(Cli.serverPid(env.TIDEMARK_HOME)).toBeUndefined()

    const started = await Cli.run(["db", "start"], env)
    expect(started.code, started.stderr).toBe(0)
    const refused = await Cli.run(["db", "start", "--port", String(await freePort())], env)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain("already running without TCP")
    expect(refused.stderr).toContain("tidemark db stop")
    const again = await Cli.run(["db", "start"], env)
    expect(again.stdout).toContain("already running; kept running until tidemark db stop")
    expect((await Cli.run(["db", "stop"], env)).code).toBe(0)
  })

  describe("against DATABASE_URL", () => {
    let url: string
    beforeAll(async () => {
      url = await TestDatabase.createDatabase("db_server")
    })

    it("db start and stop refuse (the server is the user's); psql runs on it, or says how to get psql", async () => {
      const refused = await Cli.run(["db", "start"], { DATABASE_URL: url })
      expect(refused.code).toBe(2)
      expect(refused.stderr).toContain("manages the embedded server")

      const ran = await Cli.run(["psql", "--", "-tAc", "SELECT current_database()"], { DATABASE_URL: url })
      expect(ran.code, ran.stderr).toBe(0)
      expect(ran.stdout.trim()).toBe(new URL(url).pathname.slice(1))
      const failed = await Cli.run(["psql", "--", "-tAc", "SELECT nonsense"], { DATABASE_URL: url })
      expect(failed.code).toBe(1)
      expect(failed.stderr).toContain("psql exited with code")

      // A PATH without psql.
      const bin = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-nopsql-"))
      const missing = await Cli.run(["psql"], { DATABASE_URL: url, PATH: bin })
      expect(missing.code).toBe(1)
      expect(missing.stderr).toContain("psql is not installed")
      expect(missing.stderr).toContain("postgresql-client")
      expect(missing.stderr).not.toContain(new URL(url).password || "\u0000")
    })
  })
})
