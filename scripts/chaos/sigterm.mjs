// 2. SIGTERM at random moments: exit 143 each time, the final flush happened
// (banked equals written), and the lease is free the moment the process is gone.
import { tally, folderHashes, liveLease, notesFolder, openOp, syncUntilDone, sleep, between, tidemark } from "./lib.mjs"

export const name = "sigterm"

export const run = async ({ url, short }) => {
  const signals = short ? 10 : 100
  const dir = notesFolder("sigterm", 20000)
  const expected = folderHashes(dir)
  const env = { DATABASE_URL: url }
  let sent = 0
  let runs = 0
  const failures = []
  const checks = tally()
  const result = checks.totals
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
      // A signal that lands while node is still loading, before tidemark's handlers exist,
      // ends the process by the signal itself: status 143 to a shell as well.
      if (exit.code !== 143 && exit.signal !== "SIGTERM") failures.push(`exit ${exit.code} after SIGTERM`)
      const op = await openOp(url, source)
      if (op !== undefined && op.banked !== op.written) failures.push(`banked ${op.banked} of ${op.written} written`)
      if ((await liveLease(url, source)) !== undefined) failures.push("lease still held after exit")
      if (sent >= signals) {
        runs += await syncUntilDone(["sync", dir, "--source", source, "--json"], env, 1)
        break
      }
    }
    await checks.add(url, source, expected)
  }
  return {
    runs,
    faults: sent,
    ...result,
    ok: result.equal && failures.length === 0,
    detail:
      failures.length === 0
        ? "exit 143 (by handler, or by the signal itself during start-up), banked = written, lease free: every time"
        : `${failures.length} failures: ${[...new Set(failures)].slice(0, 3).join("; ")}`
  }
}
