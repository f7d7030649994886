/**
 * The folder of tidemark's own package.json, found by walking up from this
 * module, so that paths to shipped files (migrations) hold both for the
 * compiled library (`dist/…/x.js`) and for the bundled CLI (`dist/tidemark.cjs`).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const findRoot = (start: string): string => {
  let dir = start
  for (;;) {
    const manifest = path.join(dir, "package.json")
    if (
      fs.existsSync(manifest) &&
      (JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: string }).name === "tidemark"
    ) {
      return dir
    }
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error(`tidemark's package.json not found above ${start}`)
    dir = parent
  }
}

export const packageRoot: string = findRoot(path.dirname(fileURLToPath(import.meta.url)))

export const packageVersion: string = (
  JSON.parse(fs.readFileSync(path.join(packageRoot, "package.json"), "utf8")) as { version: string }
).version
