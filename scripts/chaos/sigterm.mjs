// 2. SIGTERM at random moments: exit 143 each time, the final flush happened
// (banked equals written), and the lease is free the moment the process is gone.
import { compare, folderHashes, liveLease, notesFolder, openOp, runTidemark, sleep, between, tidemark } from "./lib.mjs"

export const name = "sigterm"

export const run = async ({ url, short }) => {
  const signals = short ? 10 : 100
  const dir = notesFolder("sigterm", 20000)
  const expected = folderHashes(dir)
  const env = { DATABASE_URL: url }
  let sent = 0
  let runs = 0
  const failures = []
  const result = { lost: 0, duplicates: 0, equal: true }
  let sources = 0
  while (sent < signals) {
    const source = `chaos-sigterm-${Date.now()}-${sources++}`
    for (;;) {
      runs++
      const { child, finished } = tidemark(["sync", dir, "--source", source, "--json"], env)
      await sleep(between(400, 2500))
      const signalled = child.exitCode === null
      if (signalled) {
        child.kill("SIGTERM")
        sent++
      }
      const exit = await finished
      if (exit.code === 0) break
      if (exit.code !== 143) failures.push(`exit ${exit.code} after SIGTERM`)
      const op = await openOp(url, source)
      if (op !== undefined && op.banked !== op.written) failures.push(`banked ${op.banked} of ${op.written} written`)
      if ((await liveLease(url, source)) !== undefined) failures.push("lease still held after exit")
      if (sent >= signals) {
        runs++
        const last = await runTidemark(["sync", dir, "--source", source, "--json"], env)
        if (last.code !== 0) throw new Error(`final sync exited ${last.code}: ${last.stderr.slice(-300)}`)
        break
      }
    }
    const check = await compare(url, source, expected)
    result.lost += check.lost + check.extra
    result.duplicates += check.duplicates
    result.equal &&= check.equal
  }
  return {
    runs,
    faults: sent,
    ...result,
    ok: result.equal && failures.length === 0,
    detail:
      failures.length === 0
        ? "exit 143, banked = written, lease free: every time"
        : `${failures.length} failures: ${[...new Set(failures)].slice(0, 3).join("; ")}`
  }
}
