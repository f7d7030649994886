// The folder source's file reads, on a thread of their own (see src/source/FileReader.ts).
// A request names files under a root; the answer has, per file, either where its
// bytes are in one buffer (handed over, not copied) with its size, mtime and sha256,
// or why it cannot be imported. A request marked `versions` asks for each file's
// planned version instead (one lstat each; see `versionOf` in src/source/DirSource.ts). Plain CommonJS on purpose: it runs as it is from
// the sources, from tsc's output and beside the bundled CLI.
"use strict"
const fs = require("node:fs")
const path = require("node:path")
const crypto = require("node:crypto")
const { isUtf8 } = require("node:buffer")
const { parentPort } = require("node:worker_threads")

// One call, no Hash object per file (Node >= 20.12).
const sha256 =
  typeof crypto.hash === "function"
    ? (bytes) => crypto.hash("sha256", bytes, "hex")
    : (bytes) => crypto.createHash("sha256").update(bytes).digest("hex")

/**
 * A batch's bytes, read straight into one buffer that grows when a file does
 * not fit. It starts a quarter larger than the previous batch: a folder's
 * batches are alike, so it rarely grows.
 */
class BatchBytes {
  constructor(capacity) {
    // A Buffer, not a bare Uint8Array: its search for a NUL byte is memchr, where
    // Uint8Array#includes visits element by element (a tenth of this thread's time).
    // Unpooled, so that its memory is its own to hand over.
    this.bytes = Buffer.allocUnsafeSlow(Math.max(capacity, 4096))
    this.used = 0
  }

  /** Room for `size` more bytes at `this.used`. */
  reserve(size) {
    if (this.used + size <= this.bytes.length) return
    const grown = Buffer.allocUnsafeSlow(Math.max(this.bytes.length * 2, this.used + size))
    this.bytes.copy(grown, 0, 0, this.used)
    this.bytes = grown
  }
}

/** Reads the file at `key` into `batch` (keeping its bytes only if they are text), or says why it cannot. */
const readOne = (root, key, maxBytes, batch) => {
  let fd
  try {
    // Never through a symlink: a file swapped for a link since the plan is refused.
    fd = fs.openSync(path.join(root, key), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  } catch (error) {
    return error.code === "ELOOP"
      ? { problem: "symlink" }
      : { problem: "errno", code: error.code, message: error.message }
  }
  try {
    const stat = fs.fstatSync(fd, { bigint: true })
    if (!stat.isFile()) return { problem: "notFile" }
    if (stat.size > BigInt(maxBytes)) return { problem: "tooLarge", size: Number(stat.size) }
    const size = Number(stat.size)
    batch.reserve(size)
    const at = batch.used
    let filled = 0
    while (filled < size) {
      const n = fs.readSync(fd, batch.bytes, at + filled, size - filled, filled)
      if (n === 0) break
      filled += n
    }
    const content = batch.bytes.subarray(at, at + filled)
    if (content.includes(0)) return { problem: "binary" }
    if (!isUtf8(content)) return { problem: "notUtf8" }
    batch.used += filled
    // Exact as a number until the year 2255.
    return { at, size: filled, mtimeMicros: Number(stat.mtimeNs / 1000n), hash: sha256(content) }
  } catch (error) {
    return { problem: "errno", code: error.code, message: error.message }
  } finally {
    fs.closeSync(fd)
  }
}

/** As DirSource's `lookUpVersion`: size and mtime in microseconds, never following a symlink. */
const versionOf = (root, key) => {
  try {
    const stat = fs.lstatSync(path.join(root, key), { bigint: true })
    return `${stat.size}:${stat.mtimeNs / 1000n}`
  } catch {
    return "unknown"
  }
}

let lastBatchBytes = 0

parentPort.on("message", ({ id, root, keys, maxBytes, versions }) => {
  if (versions) {
    parentPort.postMessage({ id, versions: keys.map((key) => versionOf(root, key)) })
    return
  }
  const batch = new BatchBytes(lastBatchBytes * 1.25)
  const answers = keys.map((key) => readOne(root, key, maxBytes, batch))
  lastBatchBytes = batch.used
  const bytes = batch.bytes.subarray(0, batch.used)
  parentPort.postMessage({ id, answers, bytes }, [bytes.buffer])
})
