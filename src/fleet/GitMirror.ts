/**
 * A git source given as a URL is synced from a bare mirror in the worker's
 * home (`TIDEMARK_HOME/mirrors`), cloned on first use and fetched before each
 * sync, so that any worker on any machine can sync it. Named by the source
 * and a hash of the URL: a source recorded anew with another URL gets a new
 * mirror. A clone is made beside its place and renamed into it, so a worker
 * killed mid-clone leaves no half mirror that looks whole.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import * as Git from "../source/git/Git.js"
import { SourceUnavailable } from "../source/Source.js"

export const mirrorPath = (home: string, name: string, url: string) =>
  path.join(
    home,
    "mirrors",
    `${name.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 60)}-${createHash("sha256").update(url).digest("hex").slice(0, 16)}.git`
  )

/** git's last line, which says why; a URL's password never (git prints the URL it was given). */
const reasonOf = (stderr: string, url: string) => {
  const line =
    stderr
      .split("\n")
      .filter((l) => l.trim() !== "")
      .at(-1) ?? "git failed"
  const secret = /^[a-z+]+:\/\/[^/@]*:([^/@]+)@/i.exec(url)?.[1]
  return secret === undefined ? line : line.split(secret).join("***")
}

/** The mirror of `url`, up to date with it: its path, for `GitSource.make`. */
export const update = Effect.fn("GitMirror.update")(function* (home: string, name: string, url: string) {
  const mirror = mirrorPath(home, name, url)
  const unavailable = (what: string, stderr: string) =>
    new SourceUnavailable({
      root: url,
      reason: `${what}: ${reasonOf(stderr, url)}`,
      hint: "check that every worker can reach the URL (credentials, network)"
    })
  if (fs.existsSync(mirror)) {
    const fetched = yield* Git.run(mirror, ["fetch", "--prune", "--quiet", "origin"])
    if (fetched.code !== 0) return yield* unavailable("fetching the mirror failed", fetched.stderr)
    return mirror
  }
  fs.mkdirSync(path.dirname(mirror), { recursive: true })
  const partial = `${mirror}.${process.pid}.partial`
  fs.rmSync(partial, { recursive: true, force: true })
  const cloned = yield* Git.run(path.dirname(mirror), ["clone", "--mirror", "--quiet", "--", url, partial])
  if (cloned.code !== 0) {
    fs.rmSync(partial, { recursive: true, force: true })
    return yield* unavailable("cloning failed", cloned.stderr)
  }
  try {
    fs.renameSync(partial, mirror)
  } catch (cause) {
    // Another worker of this home cloned it meanwhile: theirs is as good.
    fs.rmSync(partial, { recursive: true, force: true })
    if (!fs.existsSync(mirror)) throw cause
  }
  return mirror
})
