// The folder source's file reads, on a thread of their own (see src/source/FileReader.ts).
// A request names files under a root; the answer has, per file, either where its
// bytes are in one shared buffer (handed over, not copied) with its size, mtime and
// sha256, or why it cannot be imported. Plain CommonJS on purpose: it runs as it is
// from the sources, from tsc's output and beside the bundled CLI.
"use strict"
const fs = require("node:fs")
const path = require("node:path")
const { createHash } = require("node:crypto")
const { isUtf8 } = require("node:buffer")
const { parentPort } = require("node:worker_threads")

const readOne = (root, key, maxBytes) => {
  let fd
  try {
    // Never through a symlink: a file swapped for a link since the plan is refused.
    fd = fs.openSync(path.join(root, ...key.split("/")), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  } catch (error) {
    return error.code === "ELOOP" ? { problem: "symlink" } : { problem: "errno", code: error.code, message: error.message }
  }
  try {
    const stat = fs.fstatSync(fd, { bigint: true })
    if (!stat.isFile()) return { problem: "notFile" }
    if (stat.size > BigInt(maxBytes)) return { problem: "tooLarge", size: Number(stat.size) }
    const bytes = Buffer.allocUnsafe(Number(stat.size))
    let filled = 0
    while (filled < bytes.length) {
      const n = fs.readSync(fd, bytes, filled, bytes.length - filled, filled)
      if (n === 0) break
      filled += n
    }
    const content = bytes.subarray(0, filled)
    if (content.includes(0)) return { problem: "binary" }
    if (!isUtf8(content)) return { problem: "notUtf8" }
    return {
      content,
      size: filled,
      mtimeMicros: String(stat.mtimeNs / 1000n),
      hash: createHash("sha256").update(content).digest("hex")
    }
  } catch (error) {
    return { problem: "errno", code: error.code, message: error.message }
  } finally {
    fs.closeSync(fd)
  }
}

parentPort.on("message", ({ id, root, keys, maxBytes }) => {
  const results = keys.map((key) => readOne(root, key, maxBytes))
  const total = results.reduce((sum, r) => sum + (r.content === undefined ? 0 : r.content.length), 0)
  // A buffer of its own (never a slice of Node's shared pool), so it can be handed over.
  const bytes = new Uint8Array(new ArrayBuffer(total))
  let at = 0
  const answers = results.map((r) => {
    if (r.content === undefined) return r
    bytes.set(r.content, at)
    const answer = { at, size: r.size, mtimeMicros: r.mtimeMicros, hash: r.hash }
    at += r.size
    return answer
  })
  parentPort.postMessage({ id, answers, bytes }, [bytes.buffer])
})
