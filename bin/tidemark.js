#!/usr/bin/env node
// Starts the bundled CLI (`dist/tidemark.cjs`) from V8's compiled form of it,
// kept per user in the cache folder: compiling the 1.9 MB bundle, and the
// functions a run calls, took ~100 ms of every start. The cache is made by the
// first run of each bundle (and node), at its exit; one that is damaged, or
// that V8 refuses (made for other flags), is compiled over as if missing.
// TIDEMARK_COMPILE_CACHE=off, or a node that cannot `require` an ES module
// (before 20.19: code from the cache cannot `import()` one), starts it with
// plain `require`.
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as vm from "node:vm"

const bundle = fileURLToPath(new URL("../dist/tidemark.cjs", import.meta.url))
const bundleRequire = createRequire(bundle)

/** The user's own cache folder, or null if there is none to use. */
const cacheFolder = () => {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache")
  try {
    fs.mkdirSync(path.join(base, "tidemark"), { recursive: true, mode: 0o700 })
    return path.join(base, "tidemark")
  } catch {
    return null
  }
}

const digest = (data) => crypto.hash("sha256", data, "buffer")

/**
 * The compiled form kept in `file`, if it is whole: V8 checks only its header
 * and length, so the file starts with its own sha256.
 */
const readCache = (file) => {
  try {
    const kept = fs.readFileSync(file)
    const data = kept.subarray(32)
    return digest(data).equals(kept.subarray(0, 32)) ? data : undefined
  } catch {
    return undefined
  }
}

const start = () => {
  // The bundle is ASCII (the build checks it), so latin1 is its exact decoding,
  // and one that needs no UTF-8 decoder (a third of the read's time).
  const source = fs.readFileSync(bundle).toString("latin1")
  const folder = cacheFolder()
  if (folder === null) return bundleRequire(bundle)
  // Named by what the compiled form depends on (V8 itself only checks the source's
  // length): the node, and this very file. Any write or replacement of the bundle
  // changes its ctime or inode, which no tool can set back (npm's fixed mtimes cannot
  // hide a new version), so this needs no hash of its 3 MB.
  const { size, ino, mtimeNs, ctimeNs } = fs.statSync(bundle, { bigint: true })
  const name = `cli-${crypto.hash("sha256", `${process.version} ${process.arch} ${bundle} ${size} ${ino} ${mtimeNs} ${ctimeNs}`, "hex").slice(0, 32)}.v8`
  const file = path.join(folder, name)
  const cachedData = readCache(file)
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    cachedData
  })
  const module = { exports: {} }
  script.runInThisContext()(module.exports, bundleRequire, module, bundle, path.dirname(bundle))
  if (cachedData !== undefined && !script.cachedDataRejected) return
  // Made when missing: once the bundle's top level has run (what every start runs, and what
  // a long run's garbage collections would have flushed by its exit: a start from such a
  // cache compiled the top level again, +160 ms), and again at the exit of a short run,
  // when it also holds the functions the command called (-40 ms for a small sync).
  keep(folder, name, script)
  process.once("exit", () => {
    if (process.uptime() < shortRun) keep(folder, name, script)
  })
}

/** A run this short (seconds) has had too few collections to flush the bytecode of its start. */
const shortRun = 2

/** Writes `script`'s compiled form as the cache `name`, in place of any other. */
const keep = (folder, name, script) => {
  try {
    const temporary = path.join(folder, `${name}.${process.pid}.tmp`)
    const data = script.createCachedData()
    fs.writeFileSync(temporary, Buffer.concat([digest(data), data]), { mode: 0o600 })
    fs.renameSync(temporary, path.join(folder, name))
    for (const old of fs.readdirSync(folder)) {
      if (old.startsWith("cli-") && old !== name && !old.endsWith(".tmp"))
        fs.rmSync(path.join(folder, old), { force: true })
    }
  } catch {
    // A read-only or full cache folder: the next start compiles again.
  }
}

if (
  !process.features.require_module ||
  typeof crypto.hash !== "function" ||
  process.env.TIDEMARK_COMPILE_CACHE === "off"
) {
  bundleRequire(bundle)
} else {
  start()
}
