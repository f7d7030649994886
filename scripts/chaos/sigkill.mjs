// 1. SIGKILL at random moments during 100,000-file syncs, until `kills` kills in all
// (a source that finishes is followed by a fresh one). After every kill: no
// duplicate rows, and what the killed run wrote but had not yet banked — the
// only work a rerun could redo — is at most one flush window (1000 items) plus
// the batches in flight. Every source ends equal to the folder.
import { tally, corpus, folderHashes, openOp, syncUntilDone, sleep, between, tidemark } from "./lib.mjs"

export const name = "sigkill"
/** Checkpoint flush window plus the write batches in flight (2 × 500) and read ahead (4 × 500). */
const redoBound = 1000 + 2 * 500 + 4 * 500

export const run = async ({ url, short }) => {
  const files = short ? 20000 : 100000
  const kills = short ? 20 : 200
  const dir = corpus(`/tmp/tidemark-bench-corpus-${files}`, files)
  const expected = folderHashes(dir)
  const env = { DATABASE_URL: url }
  let killed = 0
  let runs = 0
  let maxUnbanked = 0
  const checks = tally()
  const result = checks.totals
  let sources = 0
  while (killed < kills) {
    const source = `chaos-sigkill-${Date.now()}-${sources++}`
    for (;;) {
      runs++
      const before = await openOp(url, source)
      const unbankedBefore = before === undefined ? 0 : before.written - before.banked
      const { child, finished } = tidemark(["sync", dir, "--source", source, "--json"], env)
      // Within the time a sync takes (20,000 files import in ~1.5 s, 100,000 in ~5 s).
      await sleep(short ? between(300, 1500) : between(500, 4000))
      if (child.exitCode === null) {
        child.kill("SIGKILL")
        killed++
      }
      const exit = await finished
      if (exit.code === 0) break
      const op = await openOp(url, source)
      if (op !== undefined) maxUnbanked = Math.max(maxUnbanked, op.written - op.banked - unbankedBefore)
      if (killed >= kills) {
        runs += await syncUntilDone(["sync", dir, "--source", source, "--json"], env, 1)
        break
      }
    }
    await checks.add(url, source, expected)
  }
  return {
    runs,
    faults: killed,
    ...result,
    ok: result.equal && maxUnbanked <= redoBound,
    detail: `${sources} sources of ${files} files; at most ${maxUnbanked} items written by a killed run but not banked (bound ${redoBound})`
  }
}
