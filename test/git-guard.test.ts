/**
 * The mass-change guard where it protects: a git commit range whose watermark
 * is an ancestor of the target says what changed, however much; a reconcile
 * (the watermark rewritten away) is guarded as a folder is.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type * as SyncProgram from "../src/sync/SyncProgram.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as Repo from "./support/repo.js"
import * as TestDatabase from "./support/TestDatabase.js"

type Summary = SyncProgram.SyncSummary

describe("the mass-change guard and git (real git, real CLI, real PostgreSQL)", () => {
  let url: string
  const env = () => ({ DATABASE_URL: url })
  const sync = async (repo: string, ...args: Array<string>) => {
    const result = await Cli.run(["sync", repo, "--json", ...args], env())
    return { ...result, summary: result.code === 0 ? (JSON.parse(result.stdout) as Summary) : undefined }
  }
  const stored = async (repo: string) =>
    Object.fromEntries(
      (
        await Folder.query<{ key: string; source_version: string }>(
          url,
          "SELECT key, source_version FROM tidemark.documents WHERE source_id = $1 ORDER BY key",
          [repo]
        )
      ).map((r) => [r.key, r.source_version])
    )
  const files = (count: number, variant: string) =>
    Object.fromEntries(Array.from({ length: count }, (_, i) => [`page-${i}.md`, `# Page ${i} ${variant}\n`]))

  beforeAll(async () => {
    url = await TestDatabase.createDatabase("git_guard")
    const migrated = await Cli.run(["migrate"], env())
    expect(migrated.code, migrated.stderr).toBe(0)
  })
  afterAll(() => TestDatabase.dropDatabase(url))

  it("a pull that changes far more than the limit syncs from its commit range without --allow-mass-change", async () => {
    const repo = Repo.makeRepo()
    Repo.commit(repo, files(300, "v1"))
    expect((await sync(repo)).summary).toMatchObject({ imported: 300 })
    // The limit is max(20% of 300, 50) = 60: over several commits, 200 change and 80 go.
    Repo.commit(repo, files(200, "v2"), "rewrite pages")
    Repo.commit(
      repo,
      Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`page-${220 + i}.md`, null])),
      "drop pages"
    )
    const pulled = await sync(repo)
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(pulled.summary).toMatchObject({ imported: 200, deleted: 80 })
    expect(await stored(repo)).toEqual(Repo.treeBlobs(repo))
  })

  it("a rewritten history (the watermark no longer an ancestor) is still guarded", async () => {
    const repo = Repo.makeRepo()
    const root = Repo.commit(repo, files(300, "v1"))
    Repo.commit(repo, { "extra.md": "# extra\n" })
    expect((await sync(repo)).summary).toMatchObject({ imported: 301 })
    // Force-push style: the synced commit is rewritten away, and the new history changes 200 pages.
    Repo.git(repo, "reset", "-q", "--hard", root)
    Repo.commit(repo, files(200, "rewritten"), "rewritten")
    const refused = await sync(repo)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/refusing to import 200 of 301 documents .* \(limit 60\)/)
    const allowed = await sync(repo, "--allow-mass-change")
    expect(allowed.code, allowed.stderr).toBe(0)
    expect(allowed.summary).toMatchObject({ imported: 200, deleted: 1 })
    expect(await stored(repo)).toEqual(Repo.treeBlobs(repo))
  })
})
