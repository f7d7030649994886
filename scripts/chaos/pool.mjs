// 3. Pool exhaustion: tidemark's role has a small CONNECTION LIMIT, and other
// sessions of that role take the free slots for seconds at a time; the sync's
// direct connections are also cut now and then, so it must reconnect while the
// slots are taken. The sync finishes; the checkpoint writes that failed were retried.
import pg from "pg"
import { asUser, between, compare, folderHashes, notesFolder, query, sleep, tidemark } from "./lib.mjs"

export const name = "pool"
const role = "chaos_pool"
const limit = 6

export const run = async ({ url, short }) => {
  await query(url, `DO $$ BEGIN CREATE ROLE ${role} LOGIN SUPERUSER; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
  await query(url, `ALTER ROLE ${role} CONNECTION LIMIT ${limit}`)
  const limited = asUser(url, role)
  const dir = notesFolder("pool", short ? 20000 : 60000)
  const source = `chaos-pool-${Date.now()}`
  let stopped = false
  const refused = { hogs: 0 }
  let cuts = 0
  // Hogs: take a slot, hold it 1–3 s, let go, come back.
  const hog = async () => {
    while (!stopped) {
      const client = new pg.Client({ connectionString: limited })
      client.on("error", () => {})
      try {
        await client.connect()
        await client.query(`SELECT pg_sleep(${between(1, 3).toFixed(2)})`)
      } catch {
        refused.hogs++
      } finally {
        await client.end().catch(() => {})
      }
      await sleep(between(0, 300))
    }
  }
  const cutter = async () => {
    while (!stopped) {
      await sleep(between(20, 60))
      // A direct connection caught writing (a checkpoint flush, a renewal) is cut.
      const rows = await query(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND application_name = 'tidemark:direct' AND state = 'active'",
        [role]
      ).catch(() => [])
      cuts += rows.length
      if (rows.length === 0) continue
      // Take every slot left, so that the sync's reconnect finds none for a while.
      const takers = []
      for (;;) {
        const taker = new pg.Client({ connectionString: limited })
        taker.on("error", () => {})
        try {
          await taker.connect()
          takers.push(taker)
        } catch {
          break
        }
      }
      await sleep(between(500, 1200))
      await Promise.all(takers.map((taker) => taker.end().catch(() => {})))
    }
  }
  const background = [hog(), hog(), hog(), hog(), hog(), cutter()]
  let exit
  try {
    const { finished } = tidemark(
      [
        "sync",
        dir,
        "--source",
        source,
        "--json",
        "--concurrency",
        "1",
        "--verbose",
        "--main-pool-size",
        "4",
        "--direct-pool-size",
        "2"
      ],
      { DATABASE_URL: limited }
    )
    exit = await finished
  } finally {
    stopped = true
    await Promise.all(background)
  }
  // Each failed attempt of a checkpoint write (retried, or counted as a failed flush) logs a debug line.
  const retried = (exit.stderr.match(/checkpoint write of \d+ items failed/g) ?? []).length
  const recovered = exit.code === 0 ? JSON.parse(exit.stdout).recovered : 0
  const check = await compare(url, source, folderHashes(dir))
  return {
    runs: 1,
    faults: cuts + refused.hogs,
    lost: check.lost,
    duplicates: check.duplicates,
    equal: check.equal,
    // The short run may end before a cut meets taken slots; the full run must show retries.
    ok: exit.code === 0 && check.equal && (short || retried > 0),
    detail: `limit ${limit} connections, 5 hogs; ${cuts} direct connections cut; ${retried} checkpoint writes failed and were retried; ${recovered} transient failures resumed in process${exit.code === 0 ? "" : `; exit ${exit.code}: ${exit.stderr.split("\n").filter(Boolean).at(-1)}`}`
  }
}
