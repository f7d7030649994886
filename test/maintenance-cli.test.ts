import * as fs from "node:fs"
import * as path from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Block from "./support/block.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as TestDatabase from "./support/TestDatabase.js"

describe("deferred maintenance, search and links (real CLI, real PostgreSQL)", () => {
  let url: string
  const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: url, ...extra })
  const background = () => env({ TIDEMARK_MAINTENANCE: "background" })
  const q = <R extends pg.QueryResultRow>(text: string, values: Array<unknown> = []) =>
    Folder.query<R>(url, text, values)
  const pending = async (source: string) =>
    (
      await q<{ kind: string }>(
        "SELECT kind FROM tidemark.maintenance_debt WHERE source_id = $1 AND pending_since IS NOT NULL ORDER BY kind",
        [source]
      )
    ).map((r) => r.kind)
  const unindexed = async (source: string) =>
    (
      await q<{ n: number }>("SELECT count(*)::int AS n FROM tidemark.documents WHERE source_id = $1 AND tsv IS NULL", [
        source
      ])
    )[0]!.n
  const indexed = async (source: string) =>
    (
      await q<{ n: number }>(
        "SELECT count(*)::int AS n FROM tidemark.documents WHERE source_id = $1 AND tsv IS NOT NULL",
        [source]
      )
    )[0]!.n
  /** Waits for an observable state (a background payer's work), polling. */
  const until = async (check: () => Promise<boolean>) => {
    while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  /** Holds one document's row, so a payer's batch that contains it waits on it. */
  const holdRow = async (source: string, key: string) => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    await client.query("BEGIN")
    await client.query("SELECT 1 FROM tidemark.documents WHERE source_id = $1 AND key = $2 FOR UPDATE", [source, key])
    return {
      release: async () => {
        await client.query("ROLLBACK")
        await client.end()
      }
    }
  }
  const maintain = (...args: Array<string>) => Cli.run(["maintain", ...args], env())

  beforeAll(async () => {
    url = await TestDatabase.createDatabase("maintenance_cli")
    expect((await Cli.run(["migrate"], env())).code).toBe(0)
  })
  afterAll(() => TestDatabase.dropDatabase(url))

  it("a sync records its debt and returns; a payer in the background pays it", async () => {
    const root = Folder.makeFolder(Folder.notes(300))
    const synced = await Cli.run(["sync", root, "--json"], background())
    expect(synced.code, synced.stderr).toBe(0)
    await until(async () => (await pending(root)).length === 0)
    expect(await unindexed(root)).toBe(0)
    const [linked] = await q<{ n: number }>(
      "SELECT count(*)::int AS n FROM tidemark.documents WHERE source_id = $1 AND links_version = version",
      [root]
    )
    expect(linked!.n).toBe(300)
    const [debt] = await q<{ runs: string; attempts: number }>(
      "SELECT runs, attempts FROM tidemark.maintenance_debt WHERE source_id = $1 AND kind = 'search'",
      [root]
    )
    expect(Number(debt!.runs)).toBeGreaterThanOrEqual(1)
    expect(debt!.attempts).toBe(0)
  })

  it("a payer started by a command about to exit waits for it to be gone before it opens the database", async () => {
    const root = Folder.makeFolder(Folder.notes(50))
    expect((await Cli.run(["sync", root, "--json"], env())).code).toBe(0)
    const owed = await pending(root)
    expect(owed).toEqual(expect.arrayContaining(["links", "search"]))
    // The "starter": a process that lives until the test ends it.
    const starter = Cli.start("-e", ["process.stdin.resume(); console.log('up')"], {})
    await starter.line(/up/)
    const payer = Cli.tidemark(
      ["maintain", "--source", root],
      env({ TIDEMARK_PAYER_AFTER_PID: String(starter.process.pid) })
    )
    await payer.errLine(/waiting for the command that started this payer \(pid \d+\) to exit/)
    // Waiting: it has not taken the source's maintenance lease, and nothing is paid.
    expect(await q("SELECT 1 FROM tidemark.locks WHERE name = $1", [`maintain:${root}`])).toEqual([])
    expect(await pending(root)).toEqual(owed)
    starter.process.kill("SIGKILL")
    const done = await payer.finished
    expect(done.code, done.stderr).toBe(0)
    expect(await pending(root)).toEqual([])
    expect(await indexed(root)).toBe(50)
  })

  it("debt of a sync SIGKILLed after some batches is paid by the next start of any command, no new sync needed", async () => {
    const root = Folder.held(1500)
    const held = await Block.blockKey(url, root, Folder.heldKey)
    const child = Cli.tidemark(["sync", root, "--json"], env())
    await Block.untilWaiting(url, child.alive)
    child.process.kill("SIGKILL")
    await child.finished
    await held.release()
    const written = (
      await q<{ n: number }>("SELECT count(*)::int AS n FROM tidemark.documents WHERE source_id = $1", [root])
    )[0]!.n
    expect(written).toBeGreaterThan(0)
    expect(await pending(root)).toEqual(["analyze", "links", "search"])
    // Any command: here `status`. It finds the debt unattended and starts a payer.
    const status = await Cli.run(["status"], background())
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toContain("maintenance search owed since")
    await until(async () => (await pending(root)).length === 0)
    expect(await indexed(root)).toBe(written)
  })

  it("a payer SIGKILLed in the middle of a kind keeps what it did; the next one finishes", async () => {
    const root = Folder.held(3000)
    expect((await Cli.run(["sync", root, "--json"], env())).code).toBe(0)
    // Its batch with the held row waits; the batches before it are committed.
    const held = await holdRow(root, Folder.heldKey)
    const payer = Cli.tidemark(["maintain", "--source", root], env())
    await Block.untilWaiting(url, payer.alive)
    const before = await indexed(root)
    expect(before).toBeGreaterThan(0)
    payer.process.kill("SIGKILL")
    await payer.finished
    await held.release()
    // What it committed stays. (The statement it was waiting in may still finish: the server
    // completes a statement whose client died — a whole batch, never part of one.)
    const after = await indexed(root)
    expect([before, before + 2000]).toContain(after)
    // The lease of the killed payer (a dead local process) is taken over at once.
    const next = await maintain("--source", root)
    expect(next.code, next.stderr).toBe(0)
    expect(await unindexed(root)).toBe(0)
    expect(await pending(root)).toEqual([])
  })

  it("two payers at once: one pays, the other skips; a sync of the same source meanwhile finishes too", async () => {
    const root = Folder.held(3000)
    expect((await Cli.run(["sync", root, "--json"], env())).code).toBe(0)
    const held = await holdRow(root, Folder.heldKey)
    const first = Cli.tidemark(["maintain", "--source", root], env())
    await Block.untilWaiting(url, first.alive)
    const second = await maintain("--source", root)
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout).toContain(`${root}: skipped, another payer is paying it`)
    // The sync runs in its own lane: it does not wait for the payer, nor the payer for it.
    Folder.writeFiles(root, { "z/added.md": "# Added while the payer runs\n" })
    const sync = await Cli.run(["sync", root, "--json", "--maintenance", "off"], env())
    expect(sync.code, sync.stderr).toBe(0)
    expect(JSON.parse(sync.stdout)).toMatchObject({ imported: 1 })
    await held.release()
    const done = await first.finished
    expect(done.code, done.stderr).toBe(0)
    expect(done.stdout).toMatch(/search \d+ documents indexed/)
    // Whatever the sync added after the first payer's run began is paid by the next payer.
    expect((await maintain("--source", root)).code).toBe(0)
    expect(await unindexed(root)).toBe(0)
  })

  it("search: ranked results with snippets, web-search syntax, hostile queries as plain data", async () => {
    const root = Folder.makeFolder({
      "rivers.md":
        "---\ntitle: Rivers of Europe\n---\nThe Danube and the Rhine are long rivers. Rivers flow into the sea.\n",
      "lakes.md": "# Lakes\n\nLakes are still water; a river may feed a lake.\n",
      "mountains.md": "# Mountains\n\nThe Alps are high mountains, where many rivers begin.\n",
      "quotes.md": '# Quotes\n\nShe said: "the long river" was a metaphor.\n'
    })
    expect((await Cli.run(["sync", root, "--json", "--maintenance", "inline"], env())).code).toBe(0)
    const search = async (query: string, ...args: Array<string>) => {
      const result = await Cli.run(["search", query, "--source", root, "--json", ...args], env())
      expect(result.code, result.stderr).toBe(0)
      return JSON.parse(result.stdout) as {
        results: Array<{ key: string; snippet: string; rank: number }>
        behind: number
      }
    }
    const rivers = await search("rivers")
    expect(rivers.behind).toBe(0)
    // The title counts more than the body: the note titled Rivers comes first.
    expect(rivers.results[0]!.key).toBe("rivers.md")
    expect(rivers.results.map((r) => r.key).sort()).toEqual(["mountains.md", "rivers.md"])
    expect(rivers.results[0]!.snippet).toContain("«Rivers»")
    expect((await search('"long rivers"')).results.map((r) => r.key)).toEqual(["rivers.md"])
    expect((await search("rivers -alps")).results.map((r) => r.key)).toEqual(["rivers.md"])
    expect((await search("lakes or mountains")).results.map((r) => r.key).sort()).toEqual(["lakes.md", "mountains.md"])
    for (const hostile of [
      "'; DROP TABLE tidemark.documents; --",
      "!!! & | ( ) :*",
      '"unclosed',
      "\\",
      "a".repeat(5000)
    ]) {
      const result = await Cli.run(["search", hostile, "--source", root, "--json"], env())
      expect(result.code, `${hostile.slice(0, 20)}: ${result.stderr}`).toBe(0)
    }
    expect(await q("SELECT 1 FROM tidemark.documents WHERE source_id = $1", [root])).toHaveLength(4)
    const text = await Cli.run(["search", "rivers", "--source", root], env())
    expect(text.stdout).toMatch(/^rivers\.md — Rivers of Europe {2}\(.*, rank [\d.]+\)\n {2}.*«Rivers»/)
  })

  it("search says when the index is behind, never silently partial", async () => {
    const root = Folder.makeFolder({ "a.md": "# A\n\nrivers\n", "b.md": "# B\n\nrivers too\n" })
    expect((await Cli.run(["sync", root, "--maintenance", "off"], env())).code).toBe(0)
    const result = await Cli.run(["search", "rivers", "--source", root], env())
    expect(result.code).toBe(0)
    expect(result.stderr).toContain("the index is behind: 2 documents not yet indexed")
    expect(result.stdout).toBe("no results\n")
  })

  it("links: Markdown and wiki links, aliases, relative paths, dangling links, a renamed target", async () => {
    const root = Folder.makeFolder({
      "index.md":
        "# Index\n\nSee [the guide](docs/guide.md#setup), [[Notes on Rivers|rivers]], [[missing note]] and [web](https://example.com).\n\n```\n[not a link](nowhere.md)\n```\n",
      "docs/guide.md": "# Guide\n\nBack to [index](../index.md) and [[rivers]].\n",
      "rivers.md": "---\ntitle: Notes on Rivers\n---\nNothing links out of here, `[code](x.md)` aside.\n"
    })
    expect((await Cli.run(["sync", root, "--json", "--maintenance", "inline"], env())).code).toBe(0)
    const links = async (key: string) => {
      const result = await Cli.run(["links", key, "--source", root, "--json"], env())
      expect(result.code, result.stderr).toBe(0)
      return JSON.parse(result.stdout) as {
        outgoing: Array<{ toKey: string | null; raw: string; alias: string | null; resolved: boolean }>
        backlinks: Array<{ fromKey: string }>
      }
    }
    const index = await links("index.md")
    expect(index.outgoing.map((l) => [l.toKey, l.raw, l.alias])).toEqual([
      ["docs/guide.md", "[the guide](docs/guide.md#setup)", "the guide"],
      ["rivers.md", "[[Notes on Rivers|rivers]]", "rivers"],
      [null, "[[missing note]]", null]
    ])
    expect((await links("rivers.md")).backlinks.map((l) => l.fromKey)).toEqual(["docs/guide.md", "index.md"])
    expect((await links("index.md")).backlinks.map((l) => l.fromKey)).toEqual(["docs/guide.md"])
    const dangling = await Cli.run(["links", "--dangling", "--source", root], env())
    expect(dangling.stdout.trim()).toBe("index.md   [[missing note]]   (no missing note)")
    // Renamed: the wiki link follows the title; the Markdown link to the old path now dangles.
    fs.mkdirSync(path.join(root, "archive"))
    fs.renameSync(path.join(root, "rivers.md"), path.join(root, "archive", "rivers-2025.md"))
    Folder.writeFiles(root, { "missing note.md": "# Missing note\n\nHere now.\n" })
    expect((await Cli.run(["sync", root, "--json", "--maintenance", "inline"], env())).code).toBe(0)
    const renamed = await links("index.md")
    expect(renamed.outgoing.map((l) => l.toKey)).toEqual(["docs/guide.md", "archive/rivers-2025.md", "missing note.md"])
    const guide = await links("docs/guide.md")
    // [[rivers]] named the file, which is now rivers-2025.md: it dangles.
    expect(guide.outgoing.map((l) => [l.raw, l.resolved])).toEqual([
      ["[index](../index.md)", true],
      ["[[rivers]]", false]
    ])
    const text = await Cli.run(["links", "archive/rivers-2025.md"], env())
    expect(text.stdout).toContain("linked from (1)\n  index.md   [[Notes on Rivers|rivers]]")
  })

  it("status shows the debt of each source: kind, since when, failed attempts", async () => {
    const root = Folder.makeFolder(Folder.notes(5))
    expect((await Cli.run(["sync", root, "--maintenance", "off"], env())).code).toBe(0)
    const status = await Cli.run(["status", "--json"], env())
    const source = (JSON.parse(status.stdout) as Array<Record<string, any>>).find((s) => s["id"] === root)!
    expect(
      (source["maintenance"] as Array<{ kind: string; attempts: number }>).map((m) => [m.kind, m.attempts])
    ).toEqual([
      ["analyze", 0],
      ["links", 0],
      ["purge", 0],
      ["search", 0]
    ])
    expect((await maintain("--source", root)).code).toBe(0)
    const after = JSON.parse((await Cli.run(["status", "--json"], env())).stdout) as Array<Record<string, any>>
    expect(after.find((s) => s["id"] === root)!["maintenance"]).toEqual([])
  })
})
