// 12. Schedules across the fleet: five sources on a per-minute schedule, three
// workers for three minutes (short: two), one of them SIGKILLed in the middle of
// a minute and replaced. pg-boss fires each schedule once per tick for the whole
// fleet, and the queue keeps one job per source: every source must get exactly
// one sync (one op) per minute tick, none missed, none doubled.
import * as fs from "node:fs"
import * as path from "node:path"
import { notesFolder, query, runTidemark, scratchDir, sleep, tidemark } from "./lib.mjs"

export const name = "fleet-schedule"

export const run = async ({ url, short }) => {
  const minutes = short ? 2 : 3
  const env = { DATABASE_URL: url }
  const sources = Array.from({ length: 5 }, (_, i) => ({
    name: `sched-${Date.now()}-${i}`,
    dir: notesFolder(`sched-${i}`, 300)
  }))
  for (const s of sources) {
    const added = await runTidemark(["source", "add", s.name, s.dir, "--every", "1m"], env)
    if (added.code !== 0) throw new Error(`source add: ${added.stderr}`)
  }
  const start = () => tidemark(["worker", "--queues", "sync"], { ...env, TIDEMARK_HOME: scratchDir("sched-home") })
  const workers = [start(), start(), start()]
  const failures = []
  // From just after a minute boundary, so the first tick counted is a whole one.
  const now = () => new Date()
  await sleep(61_000 - (now().getSeconds() * 1000 + now().getMilliseconds()) + 1000)
  const from = now()
  let kills = 0
  for (let m = 0; m < minutes; m++) {
    // A change each minute, so that each tick's sync has something to import.
    for (const s of sources) fs.writeFileSync(path.join(s.dir, `minute-${m}.md`), `# minute ${m}\n`)
    await sleep(20_000)
    if (m === Math.floor(minutes / 2)) {
      const slot = kills % workers.length
      workers[slot].child.kill("SIGKILL")
      await workers[slot].finished
      workers[slot] = start()
      kills++
    }
    await sleep(40_000)
  }
  const until = now()
  // The last tick's syncs finish (a killed one is resumed by another worker first).
  await sleep(30_000)
  for (const w of workers) w.child.kill("SIGTERM")
  await Promise.all(workers.map((w) => w.finished))
  const rows = await query(
    url,
    `SELECT source_id, date_trunc('minute', created_at) AS tick, count(*)::int AS n FROM tidemark.ops
      WHERE source_id = ANY($1::text[]) AND created_at >= date_trunc('minute', $2::timestamptz) AND created_at < date_trunc('minute', $3::timestamptz)
      GROUP BY 1, 2`,
    [sources.map((s) => s.name), from, until]
  )
  const ticks = Math.round(Math.floor(until.getTime() / 60_000) - Math.floor(from.getTime() / 60_000))
  let doubled = 0
  let missed = 0
  for (const s of sources) {
    const mine = rows.filter((r) => r.source_id === s.name)
    doubled += mine.filter((r) => r.n > 1).length
    missed += ticks - mine.length
  }
  if (doubled > 0) failures.push(`${doubled} ticks with more than one sync of a source`)
  if (missed > 0) failures.push(`${missed} ticks without a sync of a source`)
  for (const s of sources) await runTidemark(["source", "remove", s.name, "--yes"], env)
  return {
    runs: rows.reduce((n, r) => n + r.n, 0),
    faults: kills,
    lost: missed,
    duplicates: doubled,
    equal: failures.length === 0,
    ok: failures.length === 0,
    detail:
      failures.length === 0
        ? `5 sources every minute, 3 workers, ${ticks} ticks, one worker SIGKILLed: exactly one sync per source per tick`
        : failures.join("; ")
  }
}
