import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type * as SyncProgram from "../src/sync/SyncProgram.js"
import * as os from "node:os"
import { holderId } from "../src/lock/localHolder.js"
import * as Block from "./support/block.js"
import * as Zombie from "./support/zombie.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as TestDatabase from "./support/TestDatabase.js"

type Summary = SyncProgram.SyncSummary

describe("tidemark sync (real CLI, real PostgreSQL)", () => {
  let url: string
  const env = () => ({ DATABASE_URL: url })
  const sync = async (root: string, ...args: Array<string>) => syncAs(undefined, root, ...args)
  const syncAs = async (runAs: Cli.RunAs | undefined, root: string, ...args: Array<string>) => {
    const result = await Cli.run(["sync", root, "--json", ...args], env(), runAs)
    return { ...result, summary: result.code === 0 ? (JSON.parse(result.stdout) as Summary) : undefined }
  }
  const stored = (root: string) => Folder.storedDocuments(url, root)
  const documentCount = async (root: string) =>
    Number(
      (
        await Folder.query<{ n: string }>(url, "SELECT count(*) AS n FROM tidemark.documents WHERE source_id = $1", [
          root
        ])
      )[0]!.n
    )
  const openOp = async (root: string) =>
    (
      await Folder.query<{ id: string; banked: string; restarts: number }>(
        url,
        "SELECT id, banked, restarts FROM tidemark.ops WHERE source_id = $1 AND status = 'open'",
        [root]
      )
    )[0]

  const { heldKey } = Folder
  const heldFolder = Folder.held
  const errorCount = async (root: string) =>
    Number(
      (
        await Folder.query<{ n: string }>(url, "SELECT count(*) AS n FROM tidemark.item_errors WHERE source_id = $1", [
          root
        ])
      )[0]!.n
    )

  beforeAll(async () => {
    url = await TestDatabase.createDatabase("sync")
    const migrated = await Cli.run(["migrate"], env())
    expect(migrated.code, migrated.stderr).toBe(0)
  })
  afterAll(() => TestDatabase.dropDatabase(url))

  it("imports a folder of 3000 files; a second sync reads and writes nothing", async () => {
    const root = Folder.makeFolder(Folder.notes(3000))
    const first = await sync(root)
    expect(first.code, first.stderr).toBe(0)
    expect(first.summary).toMatchObject({ seen: 3000, imported: 3000, failed: 0, deleted: 0 })
    expect(await stored(root)).toEqual(Folder.expectedDocuments(root))
    // The finished op keeps no banked items (none written back after it closed).
    const [leftover] = await Folder.query<{ n: string }>(
      url,
      "SELECT count(*) AS n FROM tidemark.op_items i JOIN tidemark.ops o ON o.id = i.op_id WHERE o.source_id = $1",
      [root]
    )
    expect(Number(leftover!.n)).toBe(0)
    const [before] = await Folder.query<{ at: Date }>(
      url,
      "SELECT max(imported_at) AS at FROM tidemark.documents WHERE source_id = $1",
      [root]
    )

    const second = await sync(root)
    expect(second.summary).toMatchObject({ seen: 3000, unchanged: 3000, read: 0, imported: 0, deleted: 0 })
    const [after] = await Folder.query<{ at: Date }>(
      url,
      "SELECT max(imported_at) AS at FROM tidemark.documents WHERE source_id = $1",
      [root]
    )
    expect(after!.at).toEqual(before!.at)
    expect(await openOp(root)).toBeUndefined()
  })

  it("picks up changes, additions, deletions and renames", async () => {
    const root = Folder.makeFolder(Folder.notes(100))
    expect((await sync(root)).code).toBe(0)
    Folder.writeFiles(root, {
      "d1/note-1.md": "# Changed one\n",
      "d2/note-2.md": "# Changed two\n",
      "new/added.md": "---\ntitle: Added\n---\nbody\n",
      "new/other.txt": "plain text"
    })
    fs.rmSync(path.join(root, "d3", "note-3.md"))
    fs.renameSync(path.join(root, "d4", "note-4.md"), path.join(root, "d4", "renamed.md"))
    const result = await sync(root)
    expect(result.code, result.stderr).toBe(0)
    expect(result.summary).toMatchObject({ imported: 5, deleted: 2, unchanged: 96, failed: 0 })
    expect(await stored(root)).toEqual(Folder.expectedDocuments(root))
    const [added] = await Folder.query<{ title: string; frontmatter: unknown }>(
      url,
      "SELECT title, frontmatter FROM tidemark.documents WHERE source_id = $1 AND key = 'new/added.md'",
      [root]
    )
    expect(added).toEqual({ title: "Added", frontmatter: { title: "Added" } })
  })

  it("--dry-run prints the plan's counts and writes nothing", async () => {
    const root = Folder.makeFolder(Folder.notes(30))
    const result = await sync(root, "--dry-run")
    expect(result.summary).toMatchObject({ imported: 30, deleted: 0 })
    expect(await documentCount(root)).toBe(0)
  })

  it("records each bad item with its reason, imports the rest, and picks up fixes on the next sync", async () => {
    const root = Folder.makeFolder({
      "good.md": "# Good\n",
      "binary.png": Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01]),
      "latin1.txt": Buffer.from([0x63, 0x61, 0x66, 0xe9]),
      "huge.md": "x".repeat(2 * 1024 * 1024),
      "broken.md": "---\ntitle: [unclosed\n---\nbody\n",
      "unclosed.md": "---\ntitle: never closed\n",
      "with space.md": "# Space\n",
      'quote\'s "double".md': "# Quotes\n",
      "back\\slash.md": "# Backslash\n",
      "new\nline.md": "# Newline\n",
      "日本語のノート.md": "# 日本語\n",
      "emoji 🎉.md": "# Emoji\n",
      "sql'; DROP TABLE tidemark.documents; --.md": "'; DROP TABLE tidemark.documents; --\n",
      "locked/secret.md": "# Locked folder\n",
      "unreadable.md": "# Unreadable\n"
    })
    fs.chmodSync(path.join(root, "unreadable.md"), 0o000)
    // As root every file is readable: the CLI then runs as an ordinary user.
    const user = Cli.unprivileged()
    const result = await syncAs(user, root, "--max-size-mb", "1")
    expect(result.code, result.stderr).toBe(0)
    const errors = Object.fromEntries(
      (
        await Folder.query<{ key: string; error: string }>(
          url,
          "SELECT key, error FROM tidemark.item_errors WHERE source_id = $1",
          [root]
        )
      ).map((r) => [r.key, r.error])
    )
    expect(errors["binary.png"]).toContain("binary")
    expect(errors["latin1.txt"]).toContain("UTF-8")
    expect(errors["huge.md"]).toContain("larger than the 1 MiB limit")
    expect(errors["broken.md"]).toContain("broken frontmatter")
    expect(errors["unclosed.md"]).toContain("never closed")
    expect(errors["unreadable.md"]).toContain("permission denied")
    const docs = await stored(root)
    for (const key of [
      "good.md",
      "with space.md",
      'quote\'s "double".md',
      "back\\slash.md",
      "new\nline.md",
      "日本語のノート.md",
      "emoji 🎉.md",
      "sql'; DROP TABLE tidemark.documents; --.md"
    ]) {
      expect(docs[key], key).toBe(Folder.sha256(fs.readFileSync(path.join(root, key))))
    }
    const [sqlDoc] = await Folder.query<{ content: string }>(
      url,
      "SELECT content FROM tidemark.documents WHERE source_id = $1 AND key LIKE 'sql%'",
      [root]
    )
    expect(sqlDoc!.content).toBe("'; DROP TABLE tidemark.documents; --\n")

    // Fix one file; make a folder unreadable: what is under it must not be deleted.
    Folder.writeFiles(root, { "broken.md": "---\ntitle: Fixed\n---\nbody\n" })
    fs.chmodSync(path.join(root, "locked"), 0o000)
    const again = await syncAs(user, root, "--max-size-mb", "1")
    expect(again.code, again.stderr).toBe(0)
    const after = Object.fromEntries(
      (
        await Folder.query<{ key: string; error: string }>(
          url,
          "SELECT key, error FROM tidemark.item_errors WHERE source_id = $1",
          [root]
        )
      ).map((r) => [r.key, r.error])
    )
    expect(after["broken.md"]).toBeUndefined()
    expect((await stored(root))["broken.md"]).toBe(Folder.sha256(fs.readFileSync(path.join(root, "broken.md"))))
    if (user !== undefined || process.getuid?.() !== 0) {
      expect(after["locked/"]).toContain("folder not readable")
      expect((await stored(root))["locked/secret.md"]).toBeDefined()
    }
    fs.chmodSync(path.join(root, "locked"), 0o755)
  })

  it("refuses to empty a source or delete most of it without --allow-mass-change", async () => {
    const small = Folder.makeFolder(Folder.notes(10))
    const large = Folder.makeFolder(Folder.notes(300))
    for (const root of [small, large]) expect((await sync(root)).code).toBe(0)

    fs.rmSync(path.join(small), { recursive: true })
    fs.mkdirSync(small)
    const emptied = await sync(small)
    expect(emptied.code).toBe(1)
    expect(emptied.stderr).toContain("refusing to delete all 10 documents")
    expect(await documentCount(small)).toBe(10)

    for (let i = 0; i < 100; i++) fs.rmSync(path.join(large, `d${i % 20}`, `note-${i}.md`))
    const most = await sync(large)
    expect(most.code).toBe(1)
    expect(most.stderr).toMatch(/refusing to delete 100 of 300 documents .* \(limit 60\)/)
    expect(await documentCount(large)).toBe(300)

    const allowed = await sync(large, "--allow-mass-change")
    expect(allowed.summary).toMatchObject({ deleted: 100 })
    expect(await stored(large)).toEqual(Folder.expectedDocuments(large))
  })

  it("refuses a mass import into a source, but not re-checks of recently modified files", async () => {
    const root = Folder.makeFolder()
    // Modified "just now" whenever the sync reads them (their mtime is ahead of the clock), however
    // long the machine takes: within the racy window, so every next sync re-reads them.
    const ahead = new Date(Date.now() + 3_600_000)
    for (const [key, content] of Object.entries(Folder.notes(100))) {
      fs.mkdirSync(path.dirname(path.join(root, key)), { recursive: true })
      fs.writeFileSync(path.join(root, key), content)
      fs.utimesSync(path.join(root, key), ahead, ahead)
    }
    expect((await sync(root)).summary).toMatchObject({ imported: 100 })
    const recheck = await sync(root)
    expect(recheck.code, recheck.stderr).toBe(0)
    expect(recheck.summary!.read).toBe(100)

    Folder.writeFiles(
      root,
      Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`more/new-${i}.md`, `# new ${i}\n`]))
    )
    const refused = await sync(root)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/refusing to import 60 of 100 documents .* \(limit 50\)/)
    expect(await documentCount(root)).toBe(100)
    const allowed = await sync(root, "--allow-mass-change")
    expect(allowed.summary!.imported).toBeGreaterThanOrEqual(60)
    expect(await documentCount(root)).toBe(160)
  })

  it("draws a progress bar with rate and ETA on a terminal", async () => {
    const root = heldFolder(3000)
    const held = await Block.blockKey(url, root, heldKey)
    // `script` gives the CLI a real pseudo-terminal.
    const command = `${process.execPath} ${Cli.cliBin} sync '${root}' --concurrency 1`
    const bar = /\r\x1b\[2Kimporting: \[#*\.*\] \d+\/6001 \(\d+%\), \d+ items\/s(, ETA \d+s)?/
    const terminal = await new Promise<Cli.Finished>((resolve) => {
      const child = spawn("/usr/bin/script", ["-qec", command, "/dev/null"], { env: { ...Cli.childEnv(env()) } })
      let out = ""
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString()
        // The sync waits at the held key while the bar is redrawn; then it may go on.
        if (bar.test(out)) void held.release()
      })
      child.on("close", (code, signal) => resolve({ code, signal, stdout: out, stderr: "" }))
    })
    await held.release()
    expect(terminal.code).toBe(0)
    expect(terminal.stdout).toMatch(bar)
    expect(terminal.stdout).toContain("synced")
  })

  it("skips with exit 0 while another process syncs the same source", async () => {
    const root = Folder.makeFolder(Folder.notes(5))
    const holder = Cli.start(path.join(Cli.repoRoot, "test", "fixtures", "lease-worker.mjs"), [], {
      DATABASE_URL: url,
      LEASE_NAME: `sync:${root}`
    })
    await holder.line(/"acquired"/)
    const skipped = await sync(root)
    expect(skipped.code).toBe(0)
    expect(JSON.parse(skipped.stdout)).toMatchObject({
      skipped: true,
      reason: "already running",
      holderPid: holder.process.pid
    })
    holder.process.kill("SIGTERM")
    await holder.finished
    expect((await sync(root)).summary).toMatchObject({ imported: 5 })
  })

  describe("a sync that loses its lease says so and exits 75, never 0", () => {
    const leaseWorker = path.join(Cli.repoRoot, "test", "fixtures", "lease-worker.mjs")

    /**
     * Holds the sync still in its plan (every query on the documents waits), takes its
     * lease away, ends its session under it (a transient failure, as a process paused
     * past its lease meets on waking), and returns how the sync ended.
     */
    const loseLease = async (rivalTakesIt: boolean) => {
      const root = Folder.makeFolder(Folder.notes(50))
      expect((await sync(root)).code).toBe(0)
      Folder.writeFiles(root, { "d1/note-1.md": "# changed\n" })
      const held = await Block.lockDocuments(url)
      // The default lease renews every 10 s: the transient failure comes first.
      const child = Cli.tidemark(["sync", root, "--json"], env())
      const [waiting] = await Block.untilWaiting(url, child.alive)
      await Folder.query(url, "DELETE FROM tidemark.locks WHERE name = $1", [`sync:${root}`])
      const rival = rivalTakesIt
        ? Cli.start(leaseWorker, [], { DATABASE_URL: url, LEASE_NAME: `sync:${root}` })
        : undefined
      if (rival !== undefined) await rival.line(/"acquired"/)
      await Folder.query(url, "SELECT pg_terminate_backend($1)", [waiting])
      await held.release()
      const result = await child.finished
      rival?.process.kill("SIGTERM")
      await rival?.finished
      // Whoever held it is gone: the next sync finishes the work.
      const rest = await sync(root)
      expect(rest.code, rest.stderr).toBe(0)
      expect(await stored(root)).toEqual(Folder.expectedDocuments(root))
      return { result, root }
    }

    it("taken over by another holder", async () => {
      const { result, root } = await loseLease(true)
      expect(result.code, result.stderr).toBe(75)
      expect(result.stderr).toContain(`partial: lost lease sync:${root} (token`)
      expect(result.stderr).toMatch(/\): another holder took it over; \d+ items banked, rerun to continue/)
      expect(result.stdout).not.toContain("skipped")
    })

    it("released by someone else (an operator)", async () => {
      const { result } = await loseLease(false)
      expect(result.code, result.stderr).toBe(75)
      expect(result.stderr).toMatch(/it was released by someone else .*; \d+ items banked, rerun to continue/)
    })
  })

  it("takes over at once a lease left by a holder that is now a zombie", async () => {
    const root = Folder.makeFolder(Folder.notes(5))
    const zombie = await Zombie.make()
    try {
      await Folder.query(
        url,
        `INSERT INTO tidemark.locks (name, holder, host, pid, token, expires_at)
         VALUES ($1, $2, $3, $4, nextval('tidemark.lock_token_seq'), now() + interval '1 hour')`,
        [`sync:${root}`, holderId(zombie.pid, "zombie"), os.hostname(), zombie.pid]
      )
      const result = await sync(root, "--verbose")
      expect(result.code, result.stderr).toBe(0)
      expect(result.summary).toMatchObject({ imported: 5 })
      expect(result.stderr).toContain(`took over lease sync:${root} from pid ${zombie.pid}, which no longer exists`)
    } finally {
      zombie.reap()
    }
  })

  it("--timeout stops with exit 75 and the banked count; a rerun finishes", async () => {
    const root = heldFolder(3000)
    const total = 6001
    // The sync cannot finish while the key is held: the timeout always comes first.
    const held = await Block.blockKey(url, root, heldKey)
    const child = Cli.tidemark(["sync", root, "--timeout", "3s", "--concurrency", "1"], env())
    await child.errLine(/--timeout 3 s reached: stopping after the batches in flight/)
    await held.release()
    const partial = await child.finished
    expect(partial.code, partial.stderr).toBe(75)
    const banked = Number(
      /partial: stopped after --timeout 3 s; (\d+) items banked, rerun to continue/.exec(partial.stderr)?.[1]
    )
    expect(banked).toBeLessThan(total)
    // The final flush ran before the lease was released: everything written is banked.
    const op = await openOp(root)
    expect(Number(op?.banked ?? 0)).toBe(banked)
    expect(await documentCount(root)).toBe(banked)
    const rest = await sync(root)
    expect(rest.code, rest.stderr).toBe(0)
    expect(rest.summary).toMatchObject({ resumed: op !== undefined, imported: total - banked })
    expect(await stored(root)).toEqual(Folder.expectedDocuments(root))
  })

  it("SIGTERM mid-sync exits 143 after the final flush and releases the lease at once", async () => {
    const root = heldFolder(3000)
    const total = 6001
    const held = await Block.blockKey(url, root, heldKey)
    const child = Cli.tidemark(["sync", root, "--json", "--concurrency", "1"], env())
    // Imports are under way: the batches before the held key are written.
    await Block.untilWaiting(url, child.alive)
    child.process.kill("SIGTERM")
    await child.errLine(/SIGTERM received/)
    await held.release()
    const stopped = await child.finished
    expect(stopped.code).toBe(143)
    expect(stopped.stderr).toMatch(/interrupted: \d+ items banked, rerun to continue/)
    const written = await documentCount(root)
    expect(written).toBeGreaterThan(0)
    expect(written).toBeLessThan(total)
    expect(Number((await openOp(root))!.banked)).toBe(written)
    // No "already running": the lease was released, not left to expire.
    const rest = await sync(root)
    expect(rest.code, rest.stderr).toBe(0)
    expect(rest.summary).toMatchObject({ resumed: true, imported: total - written })
    expect(await stored(root)).toEqual(Folder.expectedDocuments(root))
  })

  it("converges through 10 SIGKILLs at random moments, never re-reading what was written", async () => {
    const root = Folder.makeFolder(Folder.notes(6000))
    let kills = 0
    let added = 0
    while (kills < 10) {
      const before = await documentCount(root)
      const child = Cli.tidemark(["sync", root, "--json", "--concurrency", "1"], env())
      // Killed once it wrote a random share of what is left (or when it finished first).
      const target = before + Math.floor(Math.random() * 1500)
      while (child.alive() && (await documentCount(root)) <= target) await new Promise((r) => setTimeout(r, 10))
      if (child.alive()) {
        child.process.kill("SIGKILL")
        kills++
      }
      const result = await child.finished
      if (result.code === 0) {
        // Finished before it was killed: it read exactly what was missing. Add work and go on.
        expect((JSON.parse(result.stdout) as Summary).read).toBe(6000 + added - before)
        // Enough new work that the next kill lands in the middle of it again.
        Folder.writeFiles(
          root,
          Object.fromEntries(
            Array.from({ length: 2000 }, (_, i) => [`extra/more-${added + i}.md`, `# more ${added + i}\n`])
          )
        )
        added += 2000
      }
    }
    const total = 6000 + added
    const missing = total - (await documentCount(root))
    const final = await sync(root)
    expect(final.code, final.stderr).toBe(0)
    expect(final.summary!.read).toBe(missing)
    expect(await stored(root)).toEqual(Folder.expectedDocuments(root))
    const [rows] = await Folder.query<{ n: string; keys: string }>(
      url,
      "SELECT count(*) AS n, count(DISTINCT key) AS keys FROM tidemark.documents WHERE source_id = $1",
      [root]
    )
    expect(Number(rows!.n)).toBe(total)
    expect(Number(rows!.keys)).toBe(total)
  })

  it("recovers in the same process when the server drops its connection mid-sync", async () => {
    const root = heldFolder(3000)
    const held = await Block.blockKey(url, root, heldKey)
    const child = Cli.tidemark(["sync", root, "--json", "--concurrency", "1"], env())
    // The batch at the held key waits inside its statement: end that connection.
    const [waiting] = await Block.untilWaiting(url, child.alive)
    await Folder.query(url, "SELECT pg_terminate_backend($1)", [waiting])
    // The sync resumes in the same process and comes back to the held key.
    await Block.until(async () => (await Block.waitingBackends(url)).some((pid) => pid !== waiting), child.alive)
    await held.release()
    const result = await child.finished
    expect(result.code, result.stderr).toBe(0)
    const summary = JSON.parse(result.stdout) as Summary
    expect(summary.recovered).toBeGreaterThanOrEqual(1)
    expect(result.stderr).toContain("resuming")
    expect(await stored(root)).toEqual(Folder.expectedDocuments(root))
  })

  it("status reports documents, the open op, item errors and who is syncing; progress is shown while syncing", async () => {
    const root = heldFolder(3000, { "0-bad.bin": Buffer.from([0, 1, 2]) })
    const total = 6002
    const held = await Block.blockKey(url, root, heldKey)
    const child = Cli.tidemark(["sync", root, "--concurrency", "1"], env())
    await Block.untilWaiting(url, child.alive)
    const during = await Cli.run(["status", "--json"], env())
    const running = (JSON.parse(during.stdout) as Array<Record<string, any>>).find((s) => s["id"] === root)!
    expect(running["lock"]).toMatchObject({ pid: child.process.pid })
    expect(running["openOp"]).not.toBeNull()
    child.process.kill("SIGTERM")
    await child.errLine(/SIGTERM received/)
    await held.release()
    const stopped = await child.finished
    expect(stopped.code).toBe(143)

    const after = await Cli.run(["status", "--json"], env())
    const status = (JSON.parse(after.stdout) as Array<Record<string, any>>).find((s) => s["id"] === root)!
    expect(status["lock"]).toBeNull()
    // Banked equals processed: every written document, and the bad file.
    const processed = (await documentCount(root)) + (await errorCount(root))
    expect(await errorCount(root)).toBe(1)
    const [items] = await Folder.query<{ n: string }>(
      url,
      "SELECT count(*) AS n FROM tidemark.op_items WHERE op_id = $1",
      [status["openOp"]["id"]]
    )
    expect(Number(items!.n), stopped.stderr).toBe(processed)
    expect(status["openOp"]["banked"], stopped.stderr).toBe(processed)
    const text = await Cli.run(["status"], env())
    expect(text.stdout).toContain(`${root} (dir ${root})`)
    expect(text.stdout).toMatch(
      new RegExp(`open op\\s+op \\d+ since .*: \\d+ of ${total} banked, 0 restarts \\(rerun to continue\\)`)
    )
    expect(status["openOp"]["planned"]).toBe(total)

    const finished = await Cli.run(["sync", root], env())
    expect(finished.code, finished.stderr).toBe(0)
    // Not a TTY: plain progress lines on stderr.
    expect(finished.stderr).toMatch(/tidemark: (planning|importing|deleting|finishing): /)
    const done = (JSON.parse((await Cli.run(["status", "--json"], env())).stdout) as Array<Record<string, any>>).find(
      (s) => s["id"] === root
    )!
    expect(done).toMatchObject({ documents: total - 1, openOp: null, itemErrors: 1, lock: null })
    expect(done["recentErrors"][0]).toMatchObject({ key: "0-bad.bin" })
    expect(done["lastSync"]).not.toBeNull()
  })
})
