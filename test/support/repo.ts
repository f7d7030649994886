/** Git repositories made by the tests with real `git`, and what the database should hold for them. */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { sha256 } from "./folder.js"

/**
 * Automatic gc is off: after a large commit git starts `gc --auto` in the background, and its
 * prune removes empty object directories while the next `git add` is writing into them
 * ("unable to create temporary file"), which failed a CI run.
 */
export const git = (repo: string, ...args: Array<string>): string =>
  execFileSync("git", ["-c", "gc.auto=0", "-c", "maintenance.auto=false", ...args], {
    cwd: repo,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" }
  })

export const makeRepo = () => {
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-repo-"))
  fs.chmodSync(repo, 0o755)
  git(repo, "init", "-q", "-b", "main")
  git(repo, "config", "user.email", "tests@tidemark.invalid")
  git(repo, "config", "user.name", "tidemark tests")
  git(repo, "config", "commit.gpgsign", "false")
  return repo
}

/** Writes (string or bytes) or deletes (null) files, commits everything, returns the commit id. */
export const commit = (repo: string, files: Record<string, string | Buffer | null>, message = "change") => {
  for (const [key, content] of Object.entries(files)) {
    const file = path.join(repo, ...key.split("/"))
    if (content === null) fs.rmSync(file, { force: true })
    else {
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, content)
    }
  }
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "--allow-empty", "-m", message)
  return head(repo)
}

export const head = (repo: string) => git(repo, "rev-parse", "HEAD").trim()

/** key → blob id of every regular file in `commit`'s tree (names here are valid UTF-8). */
export const treeBlobs = (repo: string, commit = "HEAD"): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const record of git(repo, "ls-tree", "-r", "-z", "--full-tree", commit).split("\0")) {
    if (record === "") continue
    const [meta, key] = [record.slice(0, record.indexOf("\t")), record.slice(record.indexOf("\t") + 1)]
    const [mode, , oid] = meta.split(" ")
    if (mode === "100644" || mode === "100755") out[key] = oid!
  }
  return out
}

/** key → sha256 of the content, for every file of `treeBlobs` (read from the clean work tree). */
export const treeContents = (repo: string): Record<string, string> =>
  Object.fromEntries(
    Object.keys(treeBlobs(repo)).map((key) => [key, sha256(fs.readFileSync(path.join(repo, ...key.split("/"))))])
  )

/** `count` small Markdown notes. */
export const notes = (count: number, variant = ""): Record<string, string> =>
  Object.fromEntries(
    Array.from({ length: count }, (_, i) => [
      `d${i % 20}/note-${i}.md`,
      `---\ntitle: Note ${i}${variant}\n---\n# Note ${i}\n\n${`Line ${i} of the note. `.repeat(40)}\n`
    ])
  )
