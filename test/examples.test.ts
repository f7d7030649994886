/**
 * The examples in `examples/` run as their users would run them: the custom
 * sink as a program of its own (bundled, in a child process) against the real
 * PostgreSQL. (`examples/lease-rule.test.ts` runs with the suite.)
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { build } from "esbuild"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as TestDatabase from "./support/TestDatabase.js"

const bundled = path.join(Cli.repoRoot, ".tidemark-test", "examples", "custom-sink.mjs")

describe("examples/custom-sink.ts: a sync into a table of the program's own", () => {
  let url: string
  beforeAll(async () => {
    url = await TestDatabase.createDatabase("example_sink")
    // Its imports stay imports: `tidemark` is this package (dist/), `effect` the same copy as tidemark's.
    await build({
      entryPoints: [path.join(Cli.repoRoot, "examples", "custom-sink.ts")],
      outfile: bundled,
      bundle: true,
      packages: "external",
      platform: "node",
      format: "esm",
      logLevel: "warning"
    })
  })
  afterAll(() => TestDatabase.dropDatabase(url))

  const run = async (folder: string) => {
    const result = await Cli.start(bundled, [folder], { DATABASE_URL: url }).finished
    expect(result.code, result.stderr).toBe(0)
    return JSON.parse(result.stdout) as { imported: number; failed: number; deleted: number }
  }
  const notes = async () =>
    Object.fromEntries(
      (await Folder.query<{ path: string; body: string }>(url, "SELECT path, body FROM app_notes ORDER BY path")).map(
        (r) => [r.path, r.body]
      )
    )
  const itemErrors = async () =>
    Object.fromEntries(
      (
        await Folder.query<{ key: string; error: string }>(
          url,
          "SELECT key, error FROM tidemark.item_errors WHERE source_id = 'notes' ORDER BY key"
        )
      ).map((r) => [r.key, r.error])
    )

  it("stores notes in its own table; the sync records the notes it refused, and clears them when fixed or gone", async () => {
    const folder = Folder.makeFolder({ "a.md": "# A\n", "b.md": "# B\n", "empty.md": "  \n" })
    expect(await run(folder)).toMatchObject({ imported: 2, failed: 1 })
    expect(await notes()).toEqual({ "a.md": "# A\n", "b.md": "# B\n" })
    expect(await itemErrors()).toEqual({ "empty.md": "empty note" })
    // Nothing went to tidemark's documents: the sink is the program's.
    const [documents] = await Folder.query<{ n: number }>(url, "SELECT count(*)::int AS n FROM tidemark.documents")
    expect(documents!.n).toBe(0)

    Folder.writeFiles(folder, { "empty.md": "# Not empty any more\n", "b.md": "" })
    expect(await run(folder)).toMatchObject({ imported: 1, failed: 1 })
    expect(await itemErrors()).toEqual({ "b.md": "empty note" })
    fs.rmSync(path.join(folder, "b.md"))
    expect(await run(folder)).toMatchObject({ imported: 0, failed: 0, deleted: 1 })
    expect(await itemErrors()).toEqual({})
    expect(Object.keys(await notes())).toEqual(["a.md", "empty.md"])

    // `tidemark status` says where the items went, and that they are counted there.
    const status = await Cli.run(["status"], { DATABASE_URL: url })
    expect(status.stdout).toContain("items       stored by the app_notes sink (it counts them)")
    const json = JSON.parse((await Cli.run(["status", "--json"], { DATABASE_URL: url })).stdout) as Array<
      Record<string, unknown>
    >
    expect(json[0]).toMatchObject({ id: "notes", sink: "app_notes", documents: null, itemErrors: 0 })
  })
})
