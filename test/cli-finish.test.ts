/**
 * What a sync says, checked through the real CLI: the names a dry run and a
 * verbose sync give, re-checks that read the same counting as unchanged, the
 * counts agreeing between progress, summary and item errors, and the finish of
 * the output (usage lines, colour, the progress line ended, durations).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type * as JsonlSync from "../src/source/jsonl/JsonlSync.js"
import type * as SyncProgram from "../src/sync/SyncProgram.js"
import * as Block from "./support/block.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as Jsonl from "./support/jsonl.js"
import * as TestDatabase from "./support/TestDatabase.js"

type Summary = SyncProgram.SyncSummary

/** `command` on a pseudo-terminal (util-linux `script`): what the terminal showed. */
const onTerminal = (command: string, env: NodeJS.ProcessEnv, onOutput: (out: string) => void = () => {}) =>
  new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn("/usr/bin/script", ["-qec", command, "/dev/null"], { env })
    let out = ""
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString()
      onOutput(out)
    })
    child.on("close", (code) => resolve({ code, out }))
  })

/** The JSON progress lines of a `--json` run's stderr. */
const progressLines = (stderr: string) =>
  stderr
    .split("\n")
    .filter((line) => line.startsWith('{"type":"progress"'))
    .map((line) => JSON.parse(line) as Record<string, number | string>)

describe("what tidemark sync says (real CLI, real PostgreSQL)", () => {
  let url: string
  const env = () => ({ DATABASE_URL: url })
  const sync = async (root: string, ...args: Array<string>) => {
    const result = await Cli.run(["sync", root, "--json", ...args], env())
    return { ...result, summary: result.code === 0 ? (JSON.parse(result.stdout) as Summary) : undefined }
  }
  const documentCount = async (root: string) =>
    Number(
      (
        await Folder.query<{ n: string }>(url, "SELECT count(*) AS n FROM tidemark.documents WHERE source_id = $1", [
          root
        ])
      )[0]!.n
    )
  const errorCount = async (root: string) =>
    Number(
      (
        await Folder.query<{ n: string }>(url, "SELECT count(*) AS n FROM tidemark.item_errors WHERE source_id = $1", [
          root
        ])
      )[0]!.n
    )
  /** Files 0..count-1 of `prefix`. */
  const named = (prefix: string, from: number, count: number) =>
    Object.fromEntries(
      Array.from({ length: count }, (_, i) => [
        `${prefix}-${String(from + i).padStart(3, "0")}.md`,
        `# ${prefix} ${from + i}\n`
      ])
    )

  beforeAll(async () => {
    url = await TestDatabase.createDatabase("cli_finish")
    const migrated = await Cli.run(["migrate"], env())
    expect(migrated.code, migrated.stderr).toBe(0)
  })
  afterAll(() => TestDatabase.dropDatabase(url))

  it("--dry-run names what it would import and delete: the first 20 in text, all in JSON; --verbose names what a sync did", async () => {
    const root = Folder.makeFolder(named("old", 0, 40))
    expect((await sync(root)).summary).toMatchObject({ imported: 40 })
    for (let i = 0; i < 25; i++) fs.rmSync(path.join(root, `old-${String(i).padStart(3, "0")}.md`))
    Folder.writeFiles(root, named("new", 0, 25))
    const newKeys = Object.keys(named("new", 0, 25)).sort()
    const goneKeys = Object.keys(named("old", 0, 25)).sort()

    const text = await Cli.run(["sync", root, "--dry-run"], env())
    expect(text.code, text.stderr).toBe(0)
    const lines = text.stdout.split("\n")
    expect(lines[0]).toBe(`dry run of ${root}: would import 25, would delete 25, 0 failed, 15 unchanged`)
    expect(lines.filter((l) => l.startsWith("  would import "))).toEqual(
      newKeys.slice(0, 20).map((k) => `  would import ${k}`)
    )
    expect(lines.filter((l) => l.startsWith("  would delete "))).toEqual(
      goneKeys.slice(0, 20).map((k) => `  would delete ${k}`)
    )
    expect(lines.filter((l) => l === "  … and 5 more")).toHaveLength(2)

    const json = await sync(root, "--dry-run")
    expect([...json.summary!.wouldImport!].sort()).toEqual(newKeys)
    expect([...json.summary!.wouldDelete!].sort()).toEqual(goneKeys)
    expect(await documentCount(root)).toBe(40)

    const verbose = await Cli.run(["sync", root, "--verbose"], env())
    expect(verbose.code, verbose.stderr).toBe(0)
    const said = verbose.stderr.split("\n")
    expect(said.filter((l) => l.startsWith("tidemark: debug: imported "))).toEqual(
      newKeys.slice(0, 20).map((k) => `tidemark: debug: imported ${k}`)
    )
    expect(said.filter((l) => l.startsWith("tidemark: debug: deleted "))).toEqual(
      goneKeys.slice(0, 20).map((k) => `tidemark: debug: deleted ${k}`)
    )
    expect(said.filter((l) => l === "tidemark: debug: … and 5 more")).toHaveLength(2)
    expect(verbose.stdout).not.toContain("would")
    expect(await documentCount(root)).toBe(40)
  })

  it("--jsonl --dry-run names the files it would import from and those gone", async () => {
    const root = Folder.makeFolder()
    const entries = (n: number, tag: string) =>
      Jsonl.lines(Array.from({ length: n }, (_, i) => ({ role: "user", tag, i })))
    Jsonl.write(path.join(root, "a.jsonl"), entries(3, "a"))
    Jsonl.write(path.join(root, "b.jsonl"), entries(3, "b"))
    Jsonl.write(path.join(root, "c.jsonl"), entries(3, "c"))
    const first = await Cli.run(["sync", root, "--jsonl", "--json"], env())
    expect(first.code, first.stderr).toBe(0)
    Jsonl.append(path.join(root, "a.jsonl"), entries(2, "a more"))
    Jsonl.settle(path.join(root, "a.jsonl"))
    fs.rmSync(path.join(root, "b.jsonl"))
    Jsonl.write(path.join(root, "d.jsonl"), entries(4, "d"))

    const json = await Cli.run(["sync", root, "--jsonl", "--json", "--dry-run"], env())
    expect(json.code, json.stderr).toBe(0)
    const summary = JSON.parse(json.stdout) as JsonlSync.JsonlSummary
    expect([...summary.wouldImport!].sort()).toEqual(["a.jsonl", "d.jsonl"])
    expect(summary.wouldDelete).toEqual(["b.jsonl"])
    const text = await Cli.run(["sync", root, "--jsonl", "--dry-run"], env())
    expect(text.stdout).toContain("  would import from a.jsonl\n")
    expect(text.stdout).toContain("  would import from d.jsonl\n")
    expect(text.stdout).toContain("  gone b.jsonl\n")
  })

  it("a re-check that reads the same is unchanged, not imported; progress, summary and item errors agree", async () => {
    const root = Folder.makeFolder()
    // Modified "just now" whenever the sync reads them (ahead of the clock): each sync re-checks them.
    const ahead = new Date(Date.now() + 3_600_000)
    const racy = named("racy", 0, 10)
    for (const [key, content] of Object.entries(racy)) {
      fs.writeFileSync(path.join(root, key), content)
      fs.utimesSync(path.join(root, key), ahead, ahead)
    }
    Folder.writeFiles(root, {
      ...named("calm", 0, 5),
      "binary.png": Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01]),
      "broken.md": "---\ntitle: [unclosed\n---\nbody\n"
    })
    const first = await sync(root)
    expect(first.summary).toMatchObject({ seen: 17, imported: 15, failed: 2, unchanged: 0 })

    // One re-checked file really changed (same size, same mtime): it alone is imported.
    const changedKey = "racy-003.md"
    fs.writeFileSync(path.join(root, changedKey), "# RACY 3\n")
    fs.utimesSync(path.join(root, changedKey), ahead, ahead)
    const again = await sync(root)
    expect(again.code, again.stderr).toBe(0)
    expect(again.summary).toMatchObject({ seen: 17, read: 11, imported: 1, failed: 2, unchanged: 14 })
    expect(again.summary!.firstImported).toEqual([changedKey])
    const s = again.summary!
    expect(s.imported + s.failed + s.unchanged).toBe(s.seen)
    expect(await errorCount(root)).toBe(s.failed)
    const last = progressLines(again.stderr).at(-1)!
    expect(last).toMatchObject({ imported: s.imported, failed: s.failed, deleted: s.deleted, rechecked: 9, seen: 17 })
    expect(last["done"]).toBe(last["toImport"])

    // The plain progress line ends with the same counts.
    const plain = await Cli.run(["sync", root], env())
    expect(plain.code, plain.stderr).toBe(0)
    expect(plain.stdout).toMatch(/: imported 0, deleted 0, 2 failed, 15 unchanged/)
    const lastLine = plain.stderr
      .split("\n")
      .filter((l) => /^tidemark: (importing|deleting|finishing):/.test(l))
      .at(-1)
    expect(lastLine).toMatch(/^tidemark: finishing: 12\/12 \(100%\), \d+ items\/s, 2 failed, 10 re-checked unchanged$/)
  })

  it("a stopped sync's last progress line gives the banked count it reports", async () => {
    const root = Folder.held(1000)
    const held = await Block.blockKey(url, root, Folder.heldKey)
    const child = Cli.tidemark(["sync", root, "--concurrency", "1"], env())
    // Imports are under way: the batches before the held key are written.
    await Block.untilWaiting(url, child.alive)
    child.process.kill("SIGTERM")
    await child.errLine(/SIGTERM received/)
    await held.release()
    const stopped = await child.finished
    expect(stopped.code, stopped.stderr).toBe(143)
    const banked = Number(/interrupted: (\d+) items banked, rerun to continue/.exec(stopped.stderr)?.[1])
    expect(banked).toBeGreaterThan(0)
    const lastLine = stopped.stderr
      .split("\n")
      .filter((l) => /^tidemark: (importing|deleting|finishing):/.test(l))
      .at(-1)
    expect(Number(/: (\d+)\/2001 /.exec(lastLine ?? "")?.[1]), stopped.stderr).toBe(banked)
  })

  it("help: usage lines read `tidemark sync`, flags say they are off by default, no colour off a terminal or with NO_COLOR", async () => {
    const help = await Cli.run(["sync", "--help"], {})
    expect(help.code).toBe(0)
    expect(help.stdout).not.toContain("\x1b")
    expect(help.stdout).toMatch(/^tidemark sync \[--database-url/m)
    expect(help.stdout).not.toMatch(/^\$ /m)
    // A flag says it is off unless given.
    expect(help.stdout).toMatch(
      /^--dry-run\n\n {2}A true or false value\.\n\n {2}Print what[^\n]*\n\n {2}Default: off\.$/m
    )
    const root = await Cli.run(["--help"], {})
    expect(root.stdout).toMatch(/^tidemark\b/m)
    expect(root.stdout).not.toMatch(/^\$ /m)

    const command = `${process.execPath} ${Cli.cliBin} sync --help`
    const coloured = await onTerminal(command, Cli.childEnv({}))
    expect(coloured.out).toMatch(/\x1b\[[0-9;]*m/)
    const noColour = await onTerminal(command, Cli.childEnv({ NO_COLOR: "1" }))
    expect(noColour.code).toBe(0)
    expect(noColour.out).toContain("tidemark sync [")
    expect(noColour.out).not.toMatch(/\x1b\[[0-9;]*m/)
  })

  it("on a terminal, the progress bar's line is ended before the result, and its ETA is rounded for people", async () => {
    const root = Folder.held(1000)
    const held = await Block.blockKey(url, root, Folder.heldKey)
    const command = `${process.execPath} ${Cli.cliBin} sync '${root}' --concurrency 1`
    // The sync waits at the held key, with the batches before it written: the bar has a rate and an ETA.
    const bar = /\r\x1b\[2Kimporting: \[#*\.*\] \d+\/2001 \(\d+%\), \d+ items\/s, ETA ([^,\r\n]+)/
    const terminal = await onTerminal(command, Cli.childEnv(env()), (out) => {
      if (bar.test(out)) void held.release()
    })
    await held.release()
    expect(terminal.code).toBe(0)
    const eta = bar.exec(terminal.out)![1]!
    expect(eta).toMatch(/^(under 1 s|\d+(\.\d)? s|\d+ min( \d+ s)?|\d+ h( \d+ min)?)$/)
    expect(terminal.out).toMatch(/\r\x1b\[2Ksynced /)
    expect(terminal.out).not.toMatch(/items\/s[^\r\n]*synced/)
  })
})
