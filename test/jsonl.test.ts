import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { JsonlSummary } from "../src/source/jsonl/JsonlSync.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as J from "./support/jsonl.js"
import * as TestDatabase from "./support/TestDatabase.js"

describe("tidemark sync --jsonl (real CLI, real PostgreSQL)", () => {
  let url: string
  const env = () => ({ DATABASE_URL: url })
  const sync = async (root: string, ...args: Array<string>) => {
    const result = await Cli.run(["sync", root, "--jsonl", "--json", ...args], env())
    expect(result.code, result.stderr).toBe(0)
    return { ...result, summary: JSON.parse(result.stdout) as JsonlSummary }
  }
  const tookFor = (summary: JsonlSummary, file: string) =>
    summary.files.find((f) => f.path === file)?.took ?? "unchanged"
  const expectEqual = async (root: string) => expect(await J.storedEntries(url, root)).toEqual(J.fileEntries(root))
  const absentCount = async (root: string) =>
    (await J.allEntries(url, root)).filter((e) => !e.present && !e.gone).length

  beforeAll(async () => {
    url = await TestDatabase.createDatabase("jsonl")
    expect((await Cli.run(["migrate"], env())).code).toBe(0)
  })
  afterAll(() => TestDatabase.dropDatabase(url))

  it("imports every entry once, kinds and roles included; a second sync reads nothing", async () => {
    const root = Folder.makeFolder()
    J.write(
      path.join(root, "chat.jsonl"),
      J.lines([
        { role: "user", text: "hi" },
        { message: { role: "assistant", content: "hello" } },
        { type: "cache-marker" }
      ])
    )
    const first = await sync(root)
    expect(first.summary).toMatchObject({ imported: 3, failed: 0, paths: { new: 1 } })
    const rows = await J.allEntries(url, root)
    expect(rows.map((r) => [r.kind, r.role])).toEqual([
      ["message", "user"],
      ["message", "assistant"],
      ["metadata", null]
    ])
    expect(rows[0]!.entry).toEqual({ role: "user", text: "hi" })
    const second = await sync(root)
    expect(second.summary).toMatchObject({ imported: 0, paths: { unchanged: 1 }, bytesRead: 0 })
    await expectEqual(root)
  })

  it("the flood case: a file of hundreds of identical entries, compacted, then grown: no duplicates", async () => {
    const root = Folder.makeFolder()
    const file = path.join(root, "session.jsonl")
    const empty = { role: "assistant", content: "" }
    const original = [
      { role: "user", content: "start" },
      ...Array.from({ length: 300 }, () => empty),
      ...Array.from({ length: 20 }, (_, i) => ({ role: "user", content: `question ${i}` })),
      ...Array.from({ length: 200 }, () => empty)
    ]
    J.write(file, J.lines(original))
    expect((await sync(root)).summary).toMatchObject({ imported: 521 })
    // Compaction: a summary replaces the start and 150 of the empty turns; the rest is re-appended.
    const compacted = [{ type: "summary", text: "earlier turns" }, ...original.slice(151)]
    J.write(file, J.lines(compacted))
    const reconciled = await sync(root)
    expect(tookFor(reconciled.summary, "session.jsonl")).toBe("reconcile")
    expect(reconciled.summary).toMatchObject({ imported: 1 })
    expect(await absentCount(root)).toBe(151)
    await expectEqual(root)
    // Then it grows: the tail only.
    J.append(file, J.lines([{ role: "user", content: "after" }, empty]))
    const grown = await sync(root)
    expect(tookFor(grown.summary, "session.jsonl")).toBe("tail")
    expect(grown.summary).toMatchObject({ imported: 2 })
    await expectEqual(root)
    const rows = await J.allEntries(url, root)
    expect(rows.filter((r) => r.present)).toHaveLength(compacted.length + 2)
  })

  it("trailing metadata after the last message does not defeat the tail path; changed metadata reconciles", async () => {
    const root = Folder.makeFolder()
    const file = path.join(root, "log.jsonl")
    const before = Array.from({ length: 1000 }, (_, i) => ({
      role: i % 2 === 0 ? "user" : "assistant",
      content: `turn ${i}`
    }))
    J.write(file, J.lines([...before, { type: "usage", tokens: 3 }, { type: "checkpoint" }]))
    await sync(root)
    const appended = J.lines([
      { role: "user", content: "c" },
      { type: "usage", tokens: 4 }
    ])
    J.append(file, appended)
    const tail = await sync(root)
    expect(tookFor(tail.summary, "log.jsonl")).toBe("tail")
    expect(tail.summary.imported).toBe(2)
    // Bytes read: the first line, the anchor line, the metadata after it and the new tail; not the file.
    expect(tail.summary.bytesRead).toBeLessThanOrEqual(Buffer.byteLength(appended) + 4096)
    await expectEqual(root)
    // The trailing metadata rewritten in place, and a message appended: reconciled, nothing doubled.
    const text = fs.readFileSync(file, "utf8").replace('{"type":"usage","tokens":4}', '{"type":"usage","tokens":5}')
    J.write(file, `${text}${J.line({ role: "assistant", content: "d" })}`)
    const rewritten = await sync(root)
    expect(tookFor(rewritten.summary, "log.jsonl")).toBe("reconcile")
    expect(rewritten.summary.imported).toBe(2)
    expect(await absentCount(root)).toBe(1)
    await expectEqual(root)
  })

  it("copytruncate: the copy keeps the stream, the truncated file is a new one; without a copy, a reconcile", async () => {
    const root = Folder.makeFolder()
    const file = path.join(root, "app.jsonl")
    J.write(file, J.lines(Array.from({ length: 30 }, (_, i) => ({ role: "user", n: i }))))
    await sync(root)
    // Appended after the last sync, then copied away and truncated in place, then regrown.
    J.append(file, J.lines([{ role: "user", n: 30 }]))
    fs.copyFileSync(file, `${file}.1`)
    fs.truncateSync(file, 0)
    J.append(file, J.lines([{ role: "user", n: "fresh" }]))
    const rotated = await sync(root)
    expect(rotated.summary.files).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: "app.jsonl.1", took: "tail", movedFrom: "app.jsonl", imported: 1 }),
        expect.objectContaining({ path: "app.jsonl", took: "new", imported: 1 })
      ])
    )
    await expectEqual(root)
    // Truncated and regrown with no copy: the stored entries stay, marked no longer in the file.
    fs.truncateSync(file, 0)
    J.append(
      file,
      J.lines([
        { role: "user", n: "again" },
        { role: "user", n: "and again" }
      ])
    )
    const truncated = await sync(root)
    expect(tookFor(truncated.summary, "app.jsonl")).toBe("reconcile")
    expect(truncated.summary.imported).toBe(2)
    expect(await absentCount(root)).toBe(1)
    await expectEqual(root)
  })

  it("rotation by rename: entries appended before the rename are imported, none twice; a new file is a new stream", async () => {
    const root = Folder.makeFolder()
    const file = path.join(root, "events.jsonl")
    J.write(file, J.lines(Array.from({ length: 10 }, (_, i) => ({ role: "system", n: i }))))
    await sync(root)
    J.append(
      file,
      J.lines([
        { role: "system", n: 10 },
        { role: "system", n: 11 }
      ])
    )
    fs.mkdirSync(path.join(root, "archive"))
    fs.renameSync(file, path.join(root, "archive", "events.jsonl"))
    // The new file starts with the same first line as the old one (a common header).
    J.write(
      file,
      J.lines([
        { role: "system", n: 0 },
        { role: "system", n: "new" }
      ])
    )
    const after = await sync(root)
    expect(after.summary.files).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: "archive/events.jsonl", took: "tail", movedFrom: "events.jsonl", imported: 2 }),
        expect.objectContaining({ path: "events.jsonl", took: "new", imported: 2 })
      ])
    )
    expect(after.summary.gone).toEqual([])
    await expectEqual(root)
    expect((await sync(root)).summary).toMatchObject({ imported: 0, paths: { unchanged: 2 } })
  })

  it("two files with the same first line are two streams", async () => {
    const root = Folder.makeFolder()
    const header = { type: "header", version: 1 }
    J.write(path.join(root, "a.jsonl"), J.lines([header, { role: "user", who: "a" }]))
    J.write(path.join(root, "b.jsonl"), J.lines([header, { role: "user", who: "b" }]))
    expect((await sync(root)).summary).toMatchObject({ imported: 4, paths: { new: 2 } })
    J.append(path.join(root, "b.jsonl"), J.lines([{ role: "user", who: "b2" }]))
    const next = await sync(root)
    expect(next.summary).toMatchObject({ imported: 1, paths: { tail: 1, unchanged: 1 } })
    await expectEqual(root)
  })

  it("a half-written last line waits, and is imported once when it is complete", async () => {
    const root = Folder.makeFolder()
    const file = path.join(root, "w.jsonl")
    J.write(file, `${J.line({ role: "user", n: 1 })}{"role":"user","n":`)
    const first = await sync(root)
    expect(first.summary).toMatchObject({ imported: 1, pendingTails: 1 })
    expect(first.summary.files[0]).toMatchObject({ pendingTail: true })
    const status = await Cli.run(["status"], env())
    expect(status.stdout).toContain("w.jsonl: last line still being written")
    J.append(file, "2}\n")
    const second = await sync(root)
    expect(second.summary).toMatchObject({ imported: 1, pendingTails: 0 })
    await expectEqual(root)
  })

  it("invalid JSON in the middle is an item error naming file and line; the rest is imported and the tail goes on", async () => {
    const root = Folder.makeFolder()
    const file = path.join(root, "bad.jsonl")
    J.write(file, `${J.line({ role: "user", n: 1 })}{not json}\n${J.line({ role: "user", n: 3 })}`)
    const first = await sync(root)
    expect(first.summary).toMatchObject({ imported: 2, failed: 1 })
    const errors = await Folder.query<{ key: string; error: string }>(
      url,
      "SELECT key, error FROM tidemark.item_errors WHERE source_id = $1",
      [root]
    )
    expect(errors).toEqual([{ key: "bad.jsonl:2", error: expect.stringMatching(/^line 2: not valid JSON/) }])
    J.append(file, J.line({ role: "user", n: 4 }))
    const next = await sync(root)
    expect(tookFor(next.summary, "bad.jsonl")).toBe("tail")
    expect(next.summary.imported).toBe(1)
    await expectEqual(root)
  })

  it("an unreadable file is an item error and the others are synced; a deleted file's entries stay, or go with --mirror", async () => {
    const root = Folder.makeFolder()
    J.write(path.join(root, "ok.jsonl"), J.lines([{ role: "user", n: 1 }]))
    J.write(path.join(root, "locked.jsonl"), J.lines([{ role: "user", n: 2 }]))
    J.write(
      path.join(root, "doomed.jsonl"),
      J.lines([
        { role: "user", n: 3 },
        { role: "user", n: 4 }
      ])
    )
    fs.chmodSync(path.join(root, "locked.jsonl"), 0o000)
    const user = Cli.unprivileged()
    const first = await Cli.run(["sync", root, "--jsonl", "--json"], env(), user)
    expect(first.code, first.stderr).toBe(0)
    if (user !== undefined || process.getuid?.() !== 0) {
      const errors = await Folder.query<{ key: string; error: string }>(
        url,
        "SELECT key, error FROM tidemark.item_errors WHERE source_id = $1",
        [root]
      )
      expect(errors).toEqual([{ key: "locked.jsonl", error: "permission denied" }])
    }
    fs.chmodSync(path.join(root, "locked.jsonl"), 0o644)
    fs.rmSync(path.join(root, "doomed.jsonl"))
    const kept = await sync(root)
    expect(kept.summary.gone).toEqual(["doomed.jsonl"])
    const rows = await J.allEntries(url, root)
    expect(rows.filter((r) => r.path === "doomed.jsonl").map((r) => r.gone)).toEqual([true, true])
    const errors = await Folder.query(url, "SELECT key FROM tidemark.item_errors WHERE source_id = $1", [root])
    expect(errors).toEqual([])
    // With --mirror, a gone file's entries are deleted.
    fs.rmSync(path.join(root, "ok.jsonl"))
    const mirrored = await sync(root, "--mirror")
    expect(mirrored.summary).toMatchObject({ gone: ["ok.jsonl"], entriesDeleted: 1 })
    expect((await J.allEntries(url, root)).map((r) => r.path).sort()).toEqual([
      "doomed.jsonl",
      "doomed.jsonl",
      "locked.jsonl"
    ])
  })

  it("the flood cap: 1,000 new entries found by a reconcile of a 500-entry file come in passes of 100, nothing skipped", async () => {
    const root = Folder.makeFolder()
    const file = path.join(root, "big.jsonl")
    const old = Array.from({ length: 500 }, (_, i) => ({ role: "user", n: i }))
    J.write(file, J.lines(old))
    await sync(root)
    // Rewritten with 1,000 new entries in front: a reconcile finds them all new.
    const fresh = Array.from({ length: 1000 }, (_, i) => ({ role: "assistant", m: i }))
    J.write(file, J.lines([...fresh, ...old]))
    let backlog = Infinity
    for (let pass = 1; pass <= 10; pass++) {
      const result = await sync(root)
      expect(result.summary.imported, `pass ${pass}`).toBe(100)
      expect(result.summary.backlog).toBe(1000 - pass * 100)
      expect(result.summary.backlog).toBeLessThan(backlog)
      backlog = result.summary.backlog
      if (pass === 1) {
        expect(result.stderr).toContain(
          "big.jsonl: a reconcile found 1000 new entries; importing 100 now and 900 at the next syncs"
        )
        const status = await Cli.run(["status", "--json"], env())
        const source = (JSON.parse(status.stdout) as Array<Record<string, any>>).find((s) => s["id"] === root)!
        expect(source["jsonl"]["backlog"]).toEqual([{ path: "big.jsonl", entries: 900 }])
      }
    }
    await expectEqual(root)
    expect((await sync(root)).summary).toMatchObject({ imported: 0, paths: { unchanged: 1 } })
  })

  it("--allow-mass-change lifts the flood cap; a first import is exempt from it", async () => {
    const root = Folder.makeFolder()
    const file = path.join(root, "f.jsonl")
    J.write(file, J.lines(Array.from({ length: 400 }, (_, i) => ({ role: "user", n: i }))))
    expect((await sync(root)).summary.imported).toBe(400)
    J.write(file, J.lines(Array.from({ length: 400 }, (_, i) => ({ role: "user", other: i }))))
    const lifted = await sync(root, "--allow-mass-change")
    expect(lifted.summary).toMatchObject({ imported: 400, backlog: 0 })
    await expectEqual(root)
  })

  it("--id-field: entries are known by their id across rewrites; an entry written again is not doubled", async () => {
    const root = Folder.makeFolder()
    const file = path.join(root, "ids.jsonl")
    const entry = (id: string, text: string) => ({ uuid: id, role: "user", text })
    J.write(file, J.lines([entry("a", "1"), entry("b", "2"), entry("c", "3")]))
    await sync(root, "--id-field", "uuid")
    // Reordered, one dropped, one written again, one new.
    J.write(file, J.lines([entry("c", "3"), entry("a", "1"), entry("a", "1 again"), entry("d", "4")]))
    const next = await sync(root, "--id-field", "uuid")
    expect(next.summary.imported).toBe(1)
    const rows = await J.allEntries(url, root)
    expect(rows.map((r) => [r.identity, r.present])).toEqual(
      expect.arrayContaining([
        ["id:a", true],
        ["id:b", false],
        ["id:c", true],
        ["id:d", true]
      ])
    )
    expect(rows).toHaveLength(4)
  })

  it("--dry-run says which path each file would take and writes nothing", async () => {
    const root = Folder.makeFolder()
    J.write(path.join(root, "d.jsonl"), J.lines([{ role: "user", n: 1 }]))
    const dry = await sync(root, "--dry-run")
    expect(dry.summary).toMatchObject({ dryRun: true, imported: 1, paths: { new: 1 } })
    expect(await J.allEntries(url, root)).toEqual([])
  })

  it("refuses a listing that is suddenly empty (an unmounted folder) unless --allow-mass-change", async () => {
    const root = Folder.makeFolder()
    J.write(path.join(root, "x.jsonl"), J.lines([{ role: "user", n: 1 }]))
    await sync(root)
    fs.rmSync(path.join(root, "x.jsonl"))
    const refused = await Cli.run(["sync", root, "--jsonl"], env())
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain("refusing to delete all 1 files")
    expect((await sync(root, "--allow-mass-change")).summary.gone).toEqual(["x.jsonl"])
  })

  it("syncs a single JSONL file given as PATH", async () => {
    const root = Folder.makeFolder()
    const file = path.join(root, "one.jsonl")
    J.write(
      file,
      J.lines([
        { role: "user", n: 1 },
        { role: "user", n: 2 }
      ])
    )
    expect((await sync(file)).summary).toMatchObject({ imported: 2 })
    const stored = await J.storedEntries(url, file)
    expect(stored["one.jsonl"]).toHaveLength(2)
  })
})

describe("tidemark sync --jsonl under SIGKILL while files grow (real CLI, real PostgreSQL)", () => {
  let url: string
  beforeAll(async () => {
    url = await TestDatabase.createDatabase("jsonl_kill")
    expect((await Cli.run(["migrate"], { DATABASE_URL: url })).code).toBe(0)
  })
  afterAll(() => TestDatabase.dropDatabase(url))

  it("converges exactly: every entry of 50 growing files stored once, none missing, through 10 SIGKILLs", async () => {
    const root = Folder.makeFolder()
    const files = Array.from({ length: 50 }, (_, i) => path.join(root, `f${String(i).padStart(2, "0")}.jsonl`))
    for (const [i, file] of files.entries()) {
      J.write(file, J.lines(Array.from({ length: 20 }, (_, n) => ({ role: "user", file: i, n }))))
    }
    const appender = path.join(Cli.repoRoot, "test", "fixtures", "jsonl-appender.mjs")
    // Each writer has files of its own: two processes appending to one file interleave their lines.
    const writers = ["w1", "w2"].map((id, w) => Cli.start(appender, [id, ...files.filter((_, i) => i % 2 === w)]))
    const entryCount = async () =>
      (
        await Folder.query<{ n: number }>(url, "SELECT count(*)::int AS n FROM tidemark.entries WHERE source_id = $1", [
          root
        ])
      )[0]!.n
    let kills = 0
    while (kills < 10) {
      const before = await entryCount()
      const child = Cli.tidemark(["sync", root, "--jsonl", "--json", "--concurrency", "2"], { DATABASE_URL: url })
      // Killed once it wrote something (or when it finished first), a random moment later.
      while (child.alive() && (await entryCount()) === before) await new Promise((r) => setTimeout(r, 5))
      await new Promise((r) => setTimeout(r, Math.random() * 50))
      if (child.alive()) {
        child.process.kill("SIGKILL")
        kills++
      }
      const result = await child.finished
      expect([0, null], result.stderr).toContain(result.code)
    }
    for (const writer of writers) writer.process.kill("SIGTERM")
    for (const writer of writers) await writer.finished
    const final = await Cli.run(["sync", root, "--jsonl", "--json"], { DATABASE_URL: url })
    expect(final.code, final.stderr).toBe(0)
    const stored = await J.storedEntries(url, root)
    const expected = J.fileEntries(root)
    expect(Object.keys(stored).sort()).toEqual(Object.keys(expected).sort())
    for (const file of Object.keys(expected)) expect(stored[file], file).toEqual(expected[file])
    // Nothing was ever marked absent: the files only grew.
    const [absent] = await Folder.query<{ n: number }>(
      url,
      "SELECT count(*)::int AS n FROM tidemark.entries WHERE source_id = $1 AND NOT present",
      [root]
    )
    expect(absent!.n).toBe(0)
  })
})
