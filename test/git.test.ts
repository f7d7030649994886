import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type * as SyncProgram from "../src/sync/SyncProgram.js"
import * as Block from "./support/block.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as Repo from "./support/repo.js"
import * as TestDatabase from "./support/TestDatabase.js"

type Summary = SyncProgram.SyncSummary

describe("tidemark sync of a git repository (real git, real CLI, real PostgreSQL)", () => {
  let url: string
  const env = () => ({ DATABASE_URL: url })
  const sync = async (repo: string, ...args: Array<string>) => {
    const result = await Cli.run(["sync", repo, "--json", ...args], env())
    return { ...result, summary: result.code === 0 ? (JSON.parse(result.stdout) as Summary) : undefined }
  }
  /** key → [blob id, sha256 of the content] as stored. */
  const stored = async (repo: string) =>
    Object.fromEntries(
      (
        await Folder.query<{ key: string; source_version: string; version: string }>(
          url,
          "SELECT key, source_version, version FROM tidemark.documents WHERE source_id = $1 ORDER BY key",
          [repo]
        )
      ).map((r) => [r.key, [r.source_version, r.version]])
    )
  /** What the database must hold for the repository's HEAD (its work tree must be clean). */
  const expected = (repo: string) => {
    const contents = Repo.treeContents(repo)
    return Object.fromEntries(Object.entries(Repo.treeBlobs(repo)).map(([key, oid]) => [key, [oid, contents[key]]]))
  }
  const errors = async (repo: string) =>
    Object.fromEntries(
      (
        await Folder.query<{ key: string; error: string }>(
          url,
          "SELECT key, error FROM tidemark.item_errors WHERE source_id = $1",
          [repo]
        )
      ).map((r) => [r.key, r.error])
    )
  const watermark = async (repo: string) =>
    (
      await Folder.query<{ watermark: { commit: string } | null }>(
        url,
        "SELECT watermark FROM tidemark.sources WHERE id = $1",
        [repo]
      )
    )[0]?.watermark?.commit
  const documentCount = async (repo: string) =>
    Number(
      (
        await Folder.query<{ n: string }>(url, "SELECT count(*) AS n FROM tidemark.documents WHERE source_id = $1", [
          repo
        ])
      )[0]!.n
    )

  beforeAll(async () => {
    url = await TestDatabase.createDatabase("git")
    const migrated = await Cli.run(["migrate"], env())
    expect(migrated.code, migrated.stderr).toBe(0)
  })
  afterAll(() => TestDatabase.dropDatabase(url))

  it("follows a linear history commit by commit, reading only what each commit changed", async () => {
    const repo = Repo.makeRepo()
    const first = Repo.commit(repo, Repo.notes(60))
    const initial = await sync(repo)
    expect(initial.code, initial.stderr).toBe(0)
    expect(initial.summary).toMatchObject({ target: { commit: first }, read: 60, imported: 60, deleted: 0 })
    expect(await stored(repo)).toEqual(expected(repo))
    expect(await watermark(repo)).toBe(first)

    // Changes, additions, deletions.
    Repo.commit(repo, { "d0/note-0.md": "# changed\n", "new/one.md": "# one\n", "d1/note-1.md": null })
    const second = await sync(repo)
    expect(second.summary).toMatchObject({ read: 2, imported: 2, deleted: 1 })
    expect(await stored(repo)).toEqual(expected(repo))

    // A rename reads the new key only; a mode change reads nothing.
    fs.mkdirSync(path.join(repo, "moved"))
    Repo.git(repo, "mv", "d2/note-2.md", "moved/note-2.md")
    fs.chmodSync(path.join(repo, "d3", "note-3.md"), 0o755)
    Repo.commit(repo, {}, "rename and chmod")
    const third = await sync(repo)
    expect(third.summary).toMatchObject({ read: 1, imported: 1, deleted: 1 })
    expect(await stored(repo)).toEqual(expected(repo))

    // Deleted in one commit and added back in the next: the blob never changed, nothing is read.
    const content = fs.readFileSync(path.join(repo, "d4", "note-4.md"))
    Repo.commit(repo, { "d4/note-4.md": null })
    Repo.commit(repo, { "d4/note-4.md": content })
    const fourth = await sync(repo)
    expect(fourth.summary).toMatchObject({ read: 0, imported: 0, deleted: 0 })
    expect(await stored(repo)).toEqual(expected(repo))

    // No new commit: nothing to do.
    const idle = await sync(repo)
    expect(idle.summary).toMatchObject({ read: 0, imported: 0, deleted: 0, seen: 0 })
  })

  it("syncs merge commits", async () => {
    const repo = Repo.makeRepo()
    Repo.commit(repo, Repo.notes(20))
    expect((await sync(repo)).code).toBe(0)
    Repo.git(repo, "checkout", "-q", "-b", "side")
    Repo.commit(repo, { "side.md": "# side\n", "d0/note-0.md": "# side edit\n" })
    Repo.git(repo, "checkout", "-q", "main")
    Repo.commit(repo, { "main.md": "# main\n", "d5/note-5.md": null })
    Repo.git(repo, "merge", "-q", "--no-edit", "side")
    const merged = await sync(repo)
    expect(merged.summary).toMatchObject({ read: 3, imported: 3, deleted: 1 })
    expect(await stored(repo)).toEqual(expected(repo))
  })

  it("reads content from the commit, not the work tree, and status says uncommitted changes are not synced", async () => {
    const repo = Repo.makeRepo()
    Repo.commit(repo, { "a.md": "# committed\n" })
    fs.writeFileSync(path.join(repo, "a.md"), "# not committed\n")
    const result = await sync(repo)
    expect(result.code, result.stderr).toBe(0)
    const [row] = await Folder.query<{ content: string }>(
      url,
      "SELECT content FROM tidemark.documents WHERE source_id = $1 AND key = 'a.md'",
      [repo]
    )
    expect(row!.content).toBe("# committed\n")
    const status = await Cli.run(["status"], env())
    expect(status.stdout).toMatch(
      new RegExp(`${repo} \\(git ${repo}\\)[\\s\\S]*uncommitted changes: only commits are synced`)
    )
  })

  it("records symlinks, submodules, LFS pointers and binary files with their reasons; names are kept byte-exact", async () => {
    const repo = Repo.makeRepo()
    const submodule = Repo.makeRepo()
    const submoduleCommit = Repo.commit(submodule, { "inside.md": "# inside\n" })
    fs.symlinkSync("a.md", path.join(repo, "link.md"))
    const lfs =
      "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n"
    const names = {
      "with space.md": "# space\n",
      'quote"s.md': "# quotes\n",
      "back\\slash.md": "# backslash\n",
      "new\nline.md": "# newline\n",
      "日本語/ノート.md": "# japanese\n",
      "Ελληνικά.md": "# greek\n"
    }
    Repo.commit(repo, {
      "a.md": "# a\n",
      "model.bin": lfs,
      "image.png": Buffer.from([137, 80, 78, 71, 0, 1, 2]),
      ...names
    })
    // A non-UTF-8 name (Latin-1 "café.md") and a submodule (an embedded repository, added as a gitlink).
    fs.writeFileSync(
      Buffer.concat([Buffer.from(path.join(repo, "caf")), Buffer.from([0xe9]), Buffer.from(".md")]),
      "# latin-1\n"
    )
    fs.cpSync(submodule, path.join(repo, "vendor", "sub"), { recursive: true })
    Repo.commit(repo, {}, "odd entries")
    expect(Repo.git(repo, "ls-tree", "HEAD", "vendor/sub")).toContain(`160000 commit ${submoduleCommit}`)

    const result = await sync(repo)
    expect(result.code, result.stderr).toBe(0)
    expect(result.summary).toMatchObject({ imported: 8, failed: 4 })
    expect(await errors(repo)).toEqual({
      "link.md": "symlink (not followed)",
      "vendor/sub": "submodule (its files are not synced)",
      "model.bin": "Git LFS pointer, content not available",
      "image.png": "binary file (contains NUL bytes)"
    })
    const keys = Object.keys(await stored(repo)).sort()
    expect(keys).toEqual(["a.md", "caf\\xe9.md", ...Object.keys(names)].sort())

    // A later commit that fixes the binary file is picked up; the rest stay recorded.
    Repo.commit(repo, { "image.png": "# now text\n" })
    const fixed = await sync(repo)
    expect(fixed.summary).toMatchObject({ read: 1, imported: 1, failed: 0 })
    expect(Object.keys(await errors(repo)).sort()).toEqual(["link.md", "model.bin", "vendor/sub"])

    // A file that becomes a symlink loses its document and is recorded.
    fs.rmSync(path.join(repo, "a.md"))
    fs.symlinkSync("with space.md", path.join(repo, "a.md"))
    Repo.commit(repo, {})
    const linked = await sync(repo)
    expect(linked.summary).toMatchObject({ deleted: 1, failed: 1 })
    expect((await stored(repo))["a.md"]).toBeUndefined()
    expect((await errors(repo))["a.md"]).toBe("symlink (not followed)")
  })

  it("reconciles after a force push and after the synced commit is pruned, reading only changed blobs", async () => {
    const repo = Repo.makeRepo()
    const base = Repo.commit(repo, Repo.notes(100))
    Repo.commit(repo, { "d0/note-0.md": "# B\n", "b.md": "# b\n" })
    Repo.commit(repo, { "d1/note-1.md": "# C\n", "c.md": "# c\n" })
    expect((await sync(repo)).summary).toMatchObject({ imported: 102 })

    // Force push: back to the base, then new work. Against what is stored (the old tip):
    // d0/note-0.md and d1/note-1.md go back to the base's blobs, d.md is new, b.md and c.md are gone.
    Repo.git(repo, "reset", "-q", "--hard", base)
    Repo.commit(repo, { "d.md": "# d\n" })
    const rewritten = await sync(repo)
    expect(rewritten.code, rewritten.stderr).toBe(0)
    expect(rewritten.summary).toMatchObject({ read: 3, imported: 3, deleted: 2, seen: 101 })
    expect(await stored(repo)).toEqual(expected(repo))

    // The synced commit disappears entirely (reset away, reflog expired, pruned).
    const synced = Repo.head(repo)
    Repo.git(repo, "reset", "-q", "--hard", base)
    Repo.commit(repo, { "d.md": "# d again\n", "e.md": "# e\n" })
    Repo.git(repo, "reflog", "expire", "--expire=now", "--all")
    Repo.git(repo, "gc", "-q", "--prune=now")
    expect(() => Repo.git(repo, "cat-file", "-e", `${synced}^{commit}`)).toThrow()
    const pruned = await sync(repo)
    expect(pruned.code, pruned.stderr).toBe(0)
    expect(pruned.summary).toMatchObject({ read: 2, imported: 2, deleted: 0 })
    expect(await stored(repo)).toEqual(expected(repo))
  })

  it("syncs a shallow clone, and keeps converging when its history is cut again", async () => {
    const origin = Repo.makeRepo()
    Repo.commit(origin, Repo.notes(30))
    Repo.commit(origin, { "second.md": "# second\n" })
    const clone = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-clone-")), "clone")
    Repo.git(os.tmpdir(), "clone", "-q", "--depth", "1", `file://${origin}`, clone)
    expect(Repo.git(clone, "rev-parse", "--is-shallow-repository").trim()).toBe("true")
    const first = await sync(clone)
    expect(first.code, first.stderr).toBe(0)
    expect(first.summary).toMatchObject({ imported: 31 })
    expect(await stored(clone)).toEqual(expected(clone))

    // Upstream rewrites history; the clone fetches it at depth 1 (the synced commit is gone from the clone).
    Repo.git(origin, "reset", "-q", "--hard", "HEAD~1")
    Repo.commit(origin, { "third.md": "# third\n", "d0/note-0.md": "# edited\n" })
    Repo.git(clone, "fetch", "-q", "--depth", "1", "origin", "main")
    Repo.git(clone, "reset", "-q", "--hard", "FETCH_HEAD")
    Repo.git(clone, "reflog", "expire", "--expire=now", "--all")
    Repo.git(clone, "gc", "-q", "--prune=now")
    const second = await sync(clone)
    expect(second.code, second.stderr).toBe(0)
    expect(second.summary).toMatchObject({ read: 2, imported: 2, deleted: 1 })
    expect(await stored(clone)).toEqual(expected(clone))
  })

  it("pins the op's commit: new commits during a sync wait for the next one, and status shows the range", async () => {
    const repo = Repo.makeRepo()
    const pinned = Repo.commit(repo, Folder.heldFiles(3000))
    // The sync waits at the held key, its op open, until the test lets go.
    const held = await Block.blockKey(url, repo, Folder.heldKey)
    const child = Cli.tidemark(["sync", repo, "--json", "--concurrency", "1"], env())
    await Block.untilWaiting(url, child.alive)
    Repo.commit(repo, { "late.md": "# late\n", "a/note-00000.md": "# late edit\n" })
    const status = await Cli.run(["status", "--json"], env())
    const open = (JSON.parse(status.stdout) as Array<Record<string, any>>).find((s) => s["id"] === repo)!["openOp"]
    expect(open).toMatchObject({ base: null, target: { commit: pinned } })
    await held.release()
    const result = await child.finished
    expect(result.code, result.stderr).toBe(0)
    expect((JSON.parse(result.stdout) as Summary).target.commit).toBe(pinned)
    expect(await watermark(repo)).toBe(pinned)

    const next = await sync(repo)
    expect(next.summary).toMatchObject({ target: { commit: Repo.head(repo) }, read: 2, imported: 2 })
    expect(await stored(repo)).toEqual(expected(repo))
  })

  it("converges through repeated SIGKILLs of a large first sync, new commits included, never re-reading a banked blob", async () => {
    const repo = Repo.makeRepo()
    Repo.commit(repo, Repo.notes(15000))
    const openTarget = async () =>
      (
        await Folder.query<{ target: { commit: string } }>(
          url,
          "SELECT target FROM tidemark.ops WHERE source_id = $1 AND status = 'open'",
          [repo]
        )
      )[0]?.target.commit
    /** Files of `commit` whose blob is not stored yet: what a sync toward it must read. */
    const unwritten = async (commit: string) => {
      const have = await stored(repo)
      return Object.entries(Repo.treeBlobs(repo, commit)).filter(([key, oid]) => have[key]?.[0] !== oid).length
    }
    let kills = 0
    let commits = 0
    let rounds = 0
    // Bounded: a loaded machine may let a run finish before its kill; then new files arrive
    // (below) so the next run has work to be killed in, and the loop always ends.
    while (kills < 10 && rounds++ < 40) {
      // An open op keeps its commit; a new op pins the head.
      const pin = (await openTarget()) ?? Repo.head(repo)
      const toRead = await unwritten(pin)
      const before = await documentCount(repo)
      const child = Cli.tidemark(["sync", repo, "--json", "--concurrency", "1"], env())
      // Killed once it wrote a random share of what is left (or when it finished first).
      const target = before + Math.floor(Math.random() * 1500)
      while (child.alive() && (await documentCount(repo)) <= target) await new Promise((r) => setTimeout(r, 10))
      if (child.alive()) {
        child.process.kill("SIGKILL")
        kills++
      }
      const result = await child.finished
      if (result.code === 0) {
        expect(JSON.parse(result.stdout) as Summary).toMatchObject({ target: { commit: pin }, read: toRead })
      } else {
        const [rows] = await Folder.query<{ n: string; keys: string }>(
          url,
          "SELECT count(*) AS n, count(DISTINCT key) AS keys FROM tidemark.documents WHERE source_id = $1",
          [repo]
        )
        expect(rows!.n).toBe(rows!.keys)
        // No open op when the kill came before the op opened.
        expect([pin, undefined]).toContain(await openTarget())
      }
      // New commits keep arriving while the op is open; a finished run gets a large one.
      if (result.code === 0) Repo.commit(repo, Repo.notes(2000, `more-${commits++}`))
      else if (kills % 3 === 0) Repo.commit(repo, { [`arrived-${commits++}.md`]: `# arrived ${commits}\n` })
    }
    expect(kills).toBeGreaterThan(0)
    const pin = (await openTarget()) ?? Repo.head(repo)
    const toRead = await unwritten(pin)
    const finish = await sync(repo)
    expect(finish.code, finish.stderr).toBe(0)
    expect(finish.summary).toMatchObject({ target: { commit: pin }, read: toRead })
    const caughtUp = await sync(repo)
    expect(caughtUp.summary!.target.commit).toBe(Repo.head(repo))
    expect(await stored(repo)).toEqual(expected(repo))
  })

  it("moves an interrupted op to the new head when its commit was rewritten away, keeping what it wrote", async () => {
    const repo = Repo.makeRepo()
    const base = Repo.commit(repo, { "keep.md": "# keep\n" })
    const doomed = Repo.commit(repo, Folder.heldFiles(3000))
    // Killed while it waits at the held key, with the batches before it written.
    const held = await Block.blockKey(url, repo, Folder.heldKey)
    const child = Cli.tidemark(["sync", repo, "--json", "--concurrency", "1"], env())
    await Block.untilWaiting(url, child.alive)
    child.process.kill("SIGKILL")
    await child.finished
    await held.release()
    const written = await documentCount(repo)
    expect(written).toBeGreaterThan(0)
    expect(written).toBeLessThan(6002)

    // The op's commit is rewritten away: half the notes stay as they were, half change.
    Repo.git(repo, "reset", "-q", "--hard", base)
    const rewritten = Repo.commit(repo, {
      ...Folder.heldFiles(3000),
      ...Object.fromEntries(Object.keys(Folder.heldFiles(1500)).map((key) => [key, `# ${key} (rewritten)\n`]))
    })
    expect(rewritten).not.toBe(doomed)
    const have = await stored(repo)
    const toRead = Object.entries(Repo.treeBlobs(repo)).filter(([key, oid]) => have[key]?.[0] !== oid).length
    const resumed = await sync(repo)
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(resumed.stderr).toContain("no longer in the history of HEAD")
    expect(resumed.summary).toMatchObject({ resumed: true, target: { commit: rewritten }, read: toRead })
    expect(toRead).toBeLessThan(6001)
    expect(await stored(repo)).toEqual(expected(repo))
  })

  it("fails clearly on a ref that names no commit and on a folder that is not a repository", async () => {
    const repo = Repo.makeRepo()
    Repo.commit(repo, { "a.md": "# a\n" })
    const badRef = await sync(repo, "--ref", "no-such-branch")
    expect(badRef.code).toBe(1)
    expect(badRef.stderr).toContain("no-such-branch does not name a commit")
    const folder = Folder.makeFolder({ "a.md": "# a\n" })
    const notRepo = await sync(folder, "--git")
    expect(notRepo.code).toBe(1)
    expect(notRepo.stderr).toContain("not a git repository")
    const empty = Repo.makeRepo()
    const noCommits = await sync(empty)
    expect(noCommits.code).toBe(1)
    expect(noCommits.stderr).toContain("no commits yet")
  })
})
