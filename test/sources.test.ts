/**
 * `tidemark sources`, `tidemark status SOURCE` and `tidemark source remove`
 * through the real CLI on a real PostgreSQL, and `OpsStore.removeSource` as
 * one contract on both stores (memory and PostgreSQL).
 */
import { spawn } from "node:child_process"
import * as path from "node:path"
import { describe as effectDescribe, expect as effectExpect, it as effectIt } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Migrations from "../src/db/Migrations.js"
import { OpsStore } from "../src/ops/OpsStore.js"
import * as Tidemark from "../src/Tidemark.js"
import * as Block from "./support/block.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as J from "./support/jsonl.js"
import * as TestDatabase from "./support/TestDatabase.js"

/** Every table holding rows of a source, with the condition that finds them. */
const tablesOfSource = [
  ["sources", "id = $1"],
  ["documents", "source_id = $1"],
  ["entries", "source_id = $1"],
  ["jsonl_files", "source_id = $1"],
  ["ops", "source_id = $1"],
  ["op_items", "op_id IN (SELECT id FROM tidemark.ops WHERE source_id = $1)"],
  ["item_errors", "source_id = $1"],
  ["run_state", "source_id = $1"],
  ["maintenance_debt", "source_id = $1"],
  ["link_refs", "source_id = $1"],
  ["link_names", "source_id = $1"],
  ["locks", "name IN ('sync:' || $1, 'maintain:' || $1)"]
] as const

describe("sources and source remove (real CLI, real PostgreSQL)", () => {
  let url: string
  const env = () => ({ DATABASE_URL: url })
  const rowsOf = async (sourceId: string) => {
    const out: Record<string, number> = {}
    for (const [table, where] of tablesOfSource) {
      const [row] = await Folder.query<{ n: string }>(
        url,
        `SELECT count(*) AS n FROM tidemark.${table} WHERE ${where}`,
        [sourceId]
      )
      out[table] = Number(row!.n)
    }
    return out
  }
  const ok = async (...args: Array<string>) => {
    const result = await Cli.run(args, env())
    expect(result.code, result.stderr).toBe(0)
    return result
  }

  beforeAll(async () => {
    url = await TestDatabase.createDatabase("sources")
    await ok("migrate")
  })
  afterAll(() => TestDatabase.dropDatabase(url))

  it("sources: none yet, then each with kind, root, sink, counts, last sync and who syncs it", async () => {
    expect((await ok("sources")).stdout).toContain("no sources yet")
    expect(JSON.parse((await ok("sources", "--json")).stdout)).toEqual([])
    const notes = Folder.makeFolder(Folder.notes(12))
    const logs = Folder.makeFolder()
    J.write(
      path.join(logs, "a.jsonl"),
      J.lines([
        { role: "user", n: 1 },
        { role: "assistant", n: 2 }
      ])
    )
    await ok("sync", notes, "--source", "list-notes")
    await ok("sync", logs, "--jsonl", "--source", "list-logs")
    const listed = JSON.parse((await ok("sources", "--json")).stdout) as Array<Record<string, unknown>>
    expect(listed).toEqual([
      expect.objectContaining({
        name: "list-logs",
        kind: "jsonl",
        root: logs,
        sink: "entries",
        entries: 2,
        documents: null,
        syncing: null
      }),
      expect.objectContaining({
        name: "list-notes",
        kind: "dir",
        root: notes,
        sink: "documents",
        documents: 12,
        entries: null,
        syncing: null
      })
    ])
    for (const s of listed) expect(s["lastSync"]).toEqual(expect.any(String))
    const text = (await ok("sources")).stdout
    expect(text).toMatch(/^NAME\s+KIND\s+ROOT\s+SINK\s+ITEMS\s+LAST SYNC\s+SYNCING$/m)
    expect(text).toMatch(new RegExp(`^list-notes\\s+dir\\s+${notes}\\s+documents\\s+12 documents\\s+\\S+\\s+no$`, "m"))
    expect(text).toMatch(new RegExp(`^list-logs\\s+jsonl\\s+${logs}\\s+entries\\s+2 entries\\s+\\S+\\s+no$`, "m"))

    // status SOURCE: that one only; an unknown one is an error naming it.
    const one = JSON.parse((await ok("status", "list-notes", "--json")).stdout) as Array<Record<string, unknown>>
    expect(one).toEqual([expect.objectContaining({ id: "list-notes", documents: 12 })])
    expect((await ok("status", "list-logs")).stdout).not.toContain("list-notes")
    const unknown = await Cli.run(["status", "no-such-source"], env())
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('no source named "no-such-source"')
    expect(unknown.stderr).toContain("tidemark sources")
  })

  it("source remove: an unknown name is an error naming it; without --yes off a terminal it says what it would delete and refuses", async () => {
    const unknown = await Cli.run(["source", "remove", "nope", "--yes"], env())
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('no source named "nope"')
    const root = Folder.makeFolder(Folder.notes(7))
    await ok("sync", root, "--source", "keep-me")
    const before = await rowsOf("keep-me")
    const refused = await Cli.run(["source", "remove", "keep-me"], env())
    expect(refused.code, refused.stderr).toBe(2)
    expect(refused.stdout).toContain(`source keep-me (dir ${root}): would delete 7 documents, 1 op`)
    expect(refused.stderr).toContain("without --yes")
    expect(refused.stderr).toContain("hint: add --yes")
    expect(await rowsOf("keep-me")).toEqual(before)
  })

  it("source remove refuses while a sync or a payer holds the lease, then deletes everything of the source and nothing else", async () => {
    const other = Folder.makeFolder(Folder.notes(5))
    await ok("sync", other, "--source", "bystander")
    const bystander = await rowsOf("bystander")

    // A sync stopped at a held key, with links, a bad file, banked items, saved progress.
    // Batches of 500 in key order: the links (0-links/) are in the first, written; the held key is in the second.
    const root = Folder.held(600, {
      "0-links/one.md": "# One\n\nSee [two](two.md) and [[Three]].\n",
      "0-links/two.md": "# Two\n",
      "0-bad.bin": Buffer.from([0, 1, 2])
    })
    const key = await Block.blockKey(url, "doomed", Folder.heldKey)
    const first = Cli.tidemark(["sync", root, "--source", "doomed", "--concurrency", "1"], env())
    await Block.untilWaiting(url, first.alive)
    first.process.kill("SIGTERM")
    await first.errLine(/SIGTERM received/)
    await key.release()
    expect((await first.finished).code).toBe(143)
    await ok("maintain", "--source", "doomed")

    // A sync that holds the lease, kept still while it reads the documents (outside any write
    // transaction: a lease grant would wait for one that holds the lease row's fence).
    const documents = await Block.lockDocuments(url)
    const second = Cli.tidemark(["sync", root, "--source", "doomed", "--concurrency", "1"], env())
    await Block.untilWaiting(url, second.alive)
    const during = await Cli.run(["source", "remove", "doomed", "--yes"], env())
    expect(during.code, during.stderr).toBe(1)
    expect(during.stderr).toContain(`source doomed is being synced (pid ${second.process.pid}`)
    expect(during.stderr).toContain("lease sync:doomed): not removed")
    second.process.kill("SIGTERM")
    await second.errLine(/SIGTERM received/)
    await documents.release()
    const stopped = await second.finished

    // A payer's lease, held by a process of another host (taken at the row: alive as far as we know).
    await Folder.query(
      url,
      `INSERT INTO tidemark.locks (name, holder, host, pid, token, expires_at)
       VALUES ('maintain:doomed', 'elsewhere-1', 'elsewhere', 1, nextval('tidemark.lock_token_seq'), now() + interval '1 hour')`
    )
    const paying = await Cli.run(["source", "remove", "doomed", "--yes"], env())
    expect(paying.code).toBe(1)
    expect(paying.stderr).toContain("the maintenance of source doomed is being paid (pid 1 on elsewhere")
    await Folder.query(url, "DELETE FROM tidemark.locks WHERE name = 'maintain:doomed'")

    const stored = await rowsOf("doomed")
    for (const table of ["sources", "documents", "ops", "item_errors", "run_state", "maintenance_debt", "link_refs"]) {
      expect(stored[table], table).toBeGreaterThan(0)
    }
    // Stopped before it finished, the op keeps what its runs banked.
    if (stopped.code === 143) expect(stored["op_items"]).toBeGreaterThan(0)
    const removed = await Cli.run(["source", "remove", "doomed", "--yes", "--json"], env())
    expect(removed.code, removed.stderr).toBe(0)
    const report = JSON.parse(removed.stdout) as { removed: string; deleted: Record<string, unknown> }
    expect(report).toMatchObject({
      removed: "doomed",
      deleted: {
        kind: "dir",
        root,
        documents: stored["documents"],
        ops: stored["ops"],
        bankedItems: stored["op_items"],
        itemErrors: stored["item_errors"],
        runState: 1,
        maintenanceDebt: stored["maintenance_debt"],
        links: stored["link_refs"]! + stored["link_names"]!
      }
    })
    expect(
      Object.values(await rowsOf("doomed")).every((n) => n === 0),
      JSON.stringify(await rowsOf("doomed"))
    ).toBe(true)
    expect(await rowsOf("bystander")).toEqual(bystander)
    const listed = JSON.parse((await ok("sources", "--json")).stdout) as Array<{ name: string }>
    expect(listed.map((s) => s.name)).not.toContain("doomed")

    // The name is free again: another root may take it, from scratch.
    const fresh = Folder.makeFolder(Folder.notes(3))
    await ok("sync", fresh, "--source", "doomed")
    expect(JSON.parse((await ok("status", "doomed", "--json")).stdout)[0]).toMatchObject({ root: fresh, documents: 3 })
  })

  it("source remove without --yes on a terminal asks: no keeps the source, yes deletes it", async () => {
    const root = Folder.makeFolder(Folder.notes(4))
    await ok("sync", root, "--source", "asked")
    /** The command on a terminal (through `script`), answering `key` once the question is shown. */
    const onTerminal = (key: string) =>
      new Promise<{ code: number | null; output: string }>((resolve) => {
        const command = `${process.execPath} ${Cli.cliBin} source remove asked`
        const child = spawn("script", ["-qec", command, "/dev/null"], { env: Cli.childEnv(env()) })
        let output = ""
        let answered = false
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString()
          if (!answered && output.includes("Delete source asked and all of the above?")) {
            answered = true
            child.stdin.write(key)
          }
        })
        child.once("close", (code) => resolve({ code, output }))
      })
    const no = await onTerminal("n")
    expect(no.output).toContain(`source asked (dir ${root}): would delete 4 documents, 1 op`)
    expect(no.output).toContain("nothing deleted")
    expect(no.code).toBe(0)
    expect((await rowsOf("asked"))["documents"]).toBe(4)
    const yes = await onTerminal("y")
    expect(yes.output).toContain(`removed source asked (dir ${root}): deleted 4 documents, 1 op`)
    expect(yes.code).toBe(0)
    expect(Object.values(await rowsOf("asked")).every((n) => n === 0)).toBe(true)
  })

  it("source remove of a JSONL source deletes its entries and file checkpoints", async () => {
    const logs = Folder.makeFolder()
    J.write(path.join(logs, "a.jsonl"), J.lines(Array.from({ length: 30 }, (_, i) => ({ role: "user", n: i }))))
    await ok("sync", logs, "--jsonl", "--source", "gone-logs")
    const removed = await ok("source", "remove", "gone-logs", "--yes")
    expect(removed.stdout).toContain(
      `removed source gone-logs (jsonl ${logs}): deleted 30 JSONL entries, 1 JSONL file checkpoint`
    )
    expect(Object.values(await rowsOf("gone-logs")).every((n) => n === 0)).toBe(true)
  })
})

/** removeSource as one contract, run on the memory store and on PostgreSQL. */
const removeContract = (name: string, layer: Layer.Layer<OpsStore, unknown>) =>
  effectDescribe(`OpsStore.removeSource (${name})`, () => {
    effectIt.effect("removes the source and its ops; the name is free again; an unknown one fails", () =>
      Effect.gen(function* () {
        const ops = yield* OpsStore
        const fence = Effect.void
        yield* ops.ensureSource({ id: "s", kind: "dir", root: "/a", sink: "documents" }, fence)
        const first = yield* ops.openOrResume("s", 1, fence)
        yield* ops.finish("s", first.id, { at: 1 }, fence)
        yield* ops.openOrResume("s", 2, fence)
        yield* ops.ensureSource({ id: "other", kind: "dir", root: "/b", sink: "documents" }, fence)
        const contents = yield* ops.contentsOf("s")
        effectExpect(contents).toMatchObject({ kind: "dir", root: "/a", sink: "documents", ops: 2 })
        effectExpect(yield* ops.removeSource("s", fence)).toEqual(contents)
        effectExpect((yield* Effect.flip(ops.contentsOf("s")))._tag).toBe("UnknownSource")
        effectExpect((yield* Effect.flip(ops.removeSource("s", fence)))._tag).toBe("UnknownSource")
        effectExpect(yield* ops.watermarkOf("s")).toBeNull()
        // Another root may take the name, and its first op starts from nothing.
        yield* ops.ensureSource({ id: "s", kind: "git", root: "/c", sink: "documents" }, fence)
        effectExpect(yield* ops.openOrResume("s", 3, fence)).toMatchObject({ resumed: false, base: null })
        effectExpect(yield* ops.contentsOf("other")).toMatchObject({ root: "/b", ops: 0 })
      }).pipe(Effect.provide(layer))
    )
    effectIt.effect("a failing fence removes nothing", () =>
      Effect.gen(function* () {
        const ops = yield* OpsStore
        yield* ops.ensureSource({ id: "f", kind: "dir", root: "/f", sink: "documents" }, Effect.void)
        const refused = yield* Effect.exit(ops.removeSource("f", Effect.fail("fenced out" as const)))
        effectExpect(Exit.isFailure(refused)).toBe(true)
        effectExpect(yield* ops.contentsOf("f")).toMatchObject({ root: "/f" })
      }).pipe(Effect.provide(layer))
    )
  })

removeContract("memory", Layer.fresh(Tidemark.storesMemory))
removeContract(
  "PostgreSQL",
  Layer.fresh(
    Tidemark.storesPg.pipe(
      Layer.provideMerge(Layer.effectDiscard(Migrations.migrate())),
      Layer.provideMerge(TestDatabase.layer("ops_remove"))
    )
  )
)
