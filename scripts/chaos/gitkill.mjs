// 9. The git source under SIGKILL: a first sync of a 40,000-file repository killed
// at random moments while new commits keep arriving (10 kills; 4 in the short run).
// After every kill, an open op is still pinned to the commit it began with; a run
// that finishes reads exactly the blobs of its commit not yet stored; the
// database ends equal to the last commit's tree.
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { between, query, runTidemark, scratchDir, sleep, tidemark, tree, git } from "./lib.mjs"

export const name = "git-sigkill"

/** key → blob id of the regular files of `commit`. */
export const run = async ({ url, short }) => {
  const kills = short ? 4 : 10
  const repo = scratchDir("git")
  git(repo, "init", "-q", "-b", "main")
  for (let i = 0; i < 40000; i++) {
    const file = path.join(repo, `d${i % 50}`, `note-${i}.md`)
    if (i < 50) fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, `# Note ${i}\n\n${`Line ${i}. `.repeat(30)}\n`)
  }
  git(repo, "add", "-A")
  git(repo, "commit", "-q", "-m", "corpus")
  const env = { DATABASE_URL: url }
  const source = `chaos-git-${Date.now()}`
  const stored = async () =>
    new Map(
      (await query(url, "SELECT key, source_version FROM tidemark.documents WHERE source_id = $1", [source])).map(
        (r) => [r.key, r.source_version]
      )
    )
  const openTarget = async () =>
    (await query(url, "SELECT target FROM tidemark.ops WHERE source_id = $1 AND status = 'open'", [source]))[0]?.target
      .commit
  // Items banked by the source's open op (-1 while none is open).
  const banked = async () =>
    Number(
      (await query(url, "SELECT banked FROM tidemark.ops WHERE source_id = $1 AND status = 'open'", [source]))[0]
        ?.banked ?? -1
    )
  let rewrites = 0
  const failures = []
  let killed = 0
  let runs = 0
  let commits = 0
  while (killed < kills) {
    const pin = (await openTarget()) ?? git(repo, "rev-parse", "HEAD").trim()
    const have = await stored()
    const toRead = [...tree(repo, pin)].filter(([key, oid]) => have.get(key) !== oid).length
    runs++
    const before = Math.max(0, await banked())
    const { child, finished } = tidemark(["sync", repo, "--source", source, "--json", "--concurrency", "1"], env)
    // Killed once this run has banked a batch, at a random moment after: a kill that cuts
    // into the import however fast the machine is (a fixed delay let fast runs finish).
    while (child.exitCode === null && (await banked()) <= before) await sleep(50)
    await sleep(between(0, 300))
    if (child.exitCode === null) {
      child.kill("SIGKILL")
      killed++
    }
    const exit = await finished
    if (exit.code === 0) {
      const summary = JSON.parse(exit.stdout)
      if (summary.target.commit !== pin || summary.read !== toRead) {
        failures.push(
          `a finished run went to ${summary.target.commit.slice(0, 8)} reading ${summary.read}, expected ${pin.slice(0, 8)} and ${toRead}`
        )
      }
    } else {
      const target = await openTarget()
      if (target !== undefined && target !== pin) failures.push("an open op moved off its commit")
    }
    // A finished import before the kills are done: the next commit rewrites every file, so
    // that there is an import to kill again.
    if (exit.code === 0 && killed < kills) {
      rewrites++
      for (let i = 0; i < 40000; i++) {
        fs.writeFileSync(
          path.join(repo, `d${i % 50}`, `note-${i}.md`),
          `# Note ${i}, rewrite ${rewrites}\n\n${`Line ${i}. `.repeat(30)}\n`
        )
      }
      git(repo, "add", "-A")
      git(repo, "commit", "-q", "-m", `rewrite ${rewrites}`)
      commits++
    } else if (killed % 2 === 0) {
      // New commits keep arriving.
      fs.writeFileSync(path.join(repo, `arrived-${commits}.md`), `# arrived ${commits}\n`)
      git(repo, "add", "-A")
      git(repo, "commit", "-q", "-m", `arrived ${commits++}`)
    }
  }
  for (let i = 0; i < 2; i++) {
    runs++
    const last = await runTidemark(["sync", repo, "--source", source, "--json"], env)
    if (last.code !== 0) failures.push(`catch-up sync exited ${last.code}`)
  }
  const expected = tree(repo, "HEAD")
  const have = await stored()
  let lost = 0
  for (const [key, oid] of expected) if (have.get(key) !== oid) lost++
  const extra = [...have.keys()].filter((key) => !expected.has(key)).length
  const [{ n, keys }] = await query(
    url,
    "SELECT count(*)::int AS n, count(DISTINCT key)::int AS keys FROM tidemark.documents WHERE source_id = $1",
    [source]
  )
  // Content too: each stored document's sha256 against the blob's.
  const sample = [...expected.keys()].slice(0, 200)
  const contents = new Map(
    (
      await query(url, "SELECT key, version FROM tidemark.documents WHERE source_id = $1 AND key = ANY($2)", [
        source,
        sample
      ])
    ).map((r) => [r.key, r.version])
  )
  const wrongContent = sample.filter(
    (key) =>
      contents.get(key) !==
      createHash("sha256")
        .update(execFileSync("git", ["-C", repo, "cat-file", "blob", expected.get(key)]))
        .digest("hex")
  ).length
  const equal = lost === 0 && extra === 0 && n === keys && wrongContent === 0
  return {
    runs,
    faults: killed,
    lost: lost + extra,
    duplicates: n - keys,
    equal,
    ok: equal && failures.length === 0,
    detail:
      failures.length === 0
        ? `40,000 files, ${commits} commits arrived meanwhile (${rewrites} of every file); every open op stayed pinned, every finished run read exactly the missing blobs`
        : failures.slice(0, 3).join("; ")
  }
}
