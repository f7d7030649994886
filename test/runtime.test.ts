import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { describe, expect, it } from "vitest"
import * as Cli from "./support/cli.js"

// pg-boss 12 (the fleet's job engine) needs Node 22.12; the machines here ship Node 20,
// so the project brings Node 22 as the `node` devDependency, which npm puts first on PATH.
const atLeast = (version: string, major: number, minor: number) => {
  const [a = 0, b = 0] = version.replace(/^v/, "").split(".").map(Number)
  return a > major || (a === major && b >= minor)
}

describe("the runtime", () => {
  it("the tests and the CLI children they start run on Node 22.12 or later", () => {
    expect(atLeast(process.version, 22, 12), process.version).toBe(true)
  })

  it("`npx tidemark` finds Node 22 even when the machine's own node comes first on PATH", () => {
    const systemPath = ["/usr/local/bin", "/usr/bin", "/bin"].filter((dir) => fs.existsSync(dir)).join(":")
    // What `#!/usr/bin/env node` in bin/tidemark.js resolves to under npm exec (npx).
    const version = execFileSync("npm", ["exec", "--no", "--", "node", "-p", "process.version"], {
      cwd: Cli.repoRoot,
      env: { ...process.env, PATH: `${systemPath}:${process.env.PATH ?? ""}` },
      encoding: "utf8"
    }).trim()
    expect(atLeast(version, 22, 12), version).toBe(true)
  })
})
