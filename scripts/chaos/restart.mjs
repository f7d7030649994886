// 4. The database restarts under a running sync (`pg_ctl restart -m fast`, then
// `-m immediate`: a crash and recovery). The sync recovers in the same process
// and finishes; nothing is lost. Sink batches commit without waiting for their
// WAL flush, so an immediate restart can lose the last of them: they must come
// back by themselves, because nothing of theirs was banked.
import { tally, documentCount, folderHashes, notesFolder, sleep, tidemark } from "./lib.mjs"

export const name = "restart"

export const run = async ({ url, restart, short }) => {
  const rounds = short ? 1 : 3
  const dir = notesFolder("restart", short ? 20000 : 50000)
  const expected = folderHashes(dir)
  let restarts = 0
  let runs = 0
  const failures = []
  const checks = tally()
  const result = checks.totals
  for (let round = 0; round < rounds; round++) {
    for (const mode of ["fast", "immediate"]) {
      const source = `chaos-restart-${mode}-${Date.now()}`
      runs++
      const { child, finished } = tidemark(["sync", dir, "--source", source, "--json", "--concurrency", "1"], {
        DATABASE_URL: url
      })
      let written = 0
      while ((written = await documentCount(url, source).catch(() => 0)) < 2000 && child.exitCode === null)
        await sleep(50)
      if (child.exitCode !== null) {
        failures.push(`${mode}: the sync ended before the restart`)
        continue
      }
      restart(mode)
      restarts++
      const exit = await finished
      if (exit.code !== 0) {
        failures.push(`${mode}: exit ${exit.code}: ${exit.stderr.split("\n").filter(Boolean).at(-1)}`)
        continue
      }
      const summary = JSON.parse(exit.stdout)
      if (summary.recovered < 1) failures.push(`${mode}: no recovery reported`)
      await checks.add(url, source, expected)
    }
  }
  return {
    runs,
    faults: restarts,
    ...result,
    ok: result.equal && failures.length === 0,
    detail:
      failures.length === 0
        ? `every sync finished in the process that saw the restart (${rounds} × fast + immediate)`
        : failures.join("; ")
  }
}
