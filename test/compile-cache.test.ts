import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import * as Cli from "./support/cli.js"

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex")

/** The compiled forms kept in a cache folder, with the sha256 of each (a failed comparison of 2 MB files would take minutes to print). */
const kept = (cacheHome: string): Record<string, string> => {
  const folder = path.join(cacheHome, "tidemark")
  if (!fs.existsSync(folder)) return {}
  return Object.fromEntries(
    fs.readdirSync(folder).map((name) => [name, sha256(fs.readFileSync(path.join(folder, name)))])
  )
}

/** `tidemark db --json` on the embedded server of `home`: it starts the server, so it loads its binaries. */
const dbReport = async (home: string, env: Record<string, string>) => {
  const result = await Cli.run(["db", "--json"], { TIDEMARK_HOME: home, ...env })
  expect(result.code, result.stderr).toBe(0)
  return JSON.parse(result.stdout) as { readonly migrations: { readonly pending: ReadonlyArray<string> } }
}

describe("the CLI's compile cache", () => {
  it("is made by a first run, used by the next, and compiled over when damaged", async () => {
    const cacheHome = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-cache-"))
    const home = Cli.freshHome()
    const env = { XDG_CACHE_HOME: cacheHome }

    expect(await dbReport(home, env)).toMatchObject({ migrations: { pending: [] } })
    const made = kept(cacheHome)
    expect(Object.keys(made)).toEqual([expect.stringMatching(/^cli-[0-9a-f]{32}\.v8$/)])
    expect((fs.statSync(path.join(cacheHome, "tidemark")).mode & 0o777).toString(8)).toBe("700")

    const name = Object.keys(made)[0]!
    const file = path.join(cacheHome, "tidemark", name)
    const inode = fs.statSync(file).ino
    // Started from the cache (which it leaves as it is: a new one would be a new file), it
    // still loads what it imports at run time.
    expect(await dbReport(home, env)).toMatchObject({ migrations: { pending: [] } })
    expect(kept(cacheHome)).toEqual(made)
    expect(fs.statSync(file).ino).toBe(inode)

    const damaged = fs.readFileSync(file)
    damaged.fill(0x5a, 100_000, 100_064)
    fs.writeFileSync(file, damaged)
    expect(await dbReport(home, env)).toMatchObject({ migrations: { pending: [] } })
    const remade = fs.readFileSync(file)
    expect(sha256(remade)).not.toBe(sha256(damaged))
    // Whole again: it starts with the sha256 of the rest.
    expect(remade.subarray(0, 32).toString("hex")).toBe(sha256(remade.subarray(32)))
  })

  it("is made again for a bundle written anew, even byte for byte the same", async () => {
    // A copy of the package's launcher and bundle, so that rewriting the bundle disturbs no other test.
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-copy-"))
    for (const part of ["package.json", "bin/tidemark.js", "dist/tidemark.cjs"]) {
      fs.mkdirSync(path.join(copy, path.dirname(part)), { recursive: true })
      fs.copyFileSync(path.join(Cli.repoRoot, part), path.join(copy, part))
    }
    fs.symlinkSync(path.join(Cli.repoRoot, "node_modules"), path.join(copy, "node_modules"))
    const cacheHome = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-cache-"))
    const version = async () => {
      const result = await Cli.start(path.join(copy, "bin", "tidemark.js"), ["--version"], {
        XDG_CACHE_HOME: cacheHome
      }).finished
      expect(result.code, result.stderr).toBe(0)
      expect(result.stdout).toMatch(/\d+\.\d+\.\d+/)
      return Object.keys(kept(cacheHome))
    }

    const first = await version()
    expect(first).toEqual([expect.stringMatching(/^cli-[0-9a-f]{32}\.v8$/)])
    expect(await version()).toEqual(first)
    // The same bytes written again (an install over it, a rebuild): the cache is not trusted for it.
    const bundle = path.join(copy, "dist", "tidemark.cjs")
    fs.writeFileSync(`${bundle}.new`, fs.readFileSync(bundle))
    fs.renameSync(`${bundle}.new`, bundle)
    const second = await version()
    expect(second).toHaveLength(1)
    expect(second).not.toEqual(first)
  })

  it("is neither read nor made with TIDEMARK_COMPILE_CACHE=off", async () => {
    const cacheHome = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-cache-"))
    const result = await Cli.run(["--version"], { XDG_CACHE_HOME: cacheHome, TIDEMARK_COMPILE_CACHE: "off" })
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/\d+\.\d+\.\d+/)
    expect(kept(cacheHome)).toEqual({})
  })
})
