// 5. Split brain: a holder frozen with SIGSTOP past its lease while a second sync
// takes over, then SIGCONT. The two run as different database roles, and a
// statement-level trigger on tidemark.documents records which role wrote when:
// no row may be written by the stale holder after the takeover, and the stale
// holder must report its lost lease (exit 75), never finish or skip quietly.
import { asUser, tally, documentCount, folderHashes, liveLease, notesFolder, query, sleep, tidemark } from "./lib.mjs"

export const name = "split-brain"
const ttl = "2s"

const setUp = async (url) => {
  for (const role of ["chaos_stale", "chaos_new"]) {
    await query(
      url,
      `DO $$ BEGIN CREATE ROLE ${role} LOGIN SUPERUSER; EXCEPTION WHEN duplicate_object THEN NULL; END $$`
    )
  }
  await query(
    url,
    `CREATE TABLE IF NOT EXISTS public.chaos_writes (role text NOT NULL, at timestamptz NOT NULL, source_id text);
     CREATE OR REPLACE FUNCTION public.chaos_record_write() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       INSERT INTO public.chaos_writes SELECT current_user, clock_timestamp(), source_id FROM changed LIMIT 1;
       RETURN NULL;
     END $$;
     DROP TRIGGER IF EXISTS chaos_record_insert ON tidemark.documents;
     DROP TRIGGER IF EXISTS chaos_record_update ON tidemark.documents;
     CREATE TRIGGER chaos_record_insert AFTER INSERT ON tidemark.documents
       REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION public.chaos_record_write();
     CREATE TRIGGER chaos_record_update AFTER UPDATE ON tidemark.documents
       REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION public.chaos_record_write();`
  )
}

const tearDown = (url) =>
  query(
    url,
    `DROP TRIGGER IF EXISTS chaos_record_insert ON tidemark.documents;
     DROP TRIGGER IF EXISTS chaos_record_update ON tidemark.documents;`
  )

export const run = async ({ url, short }) => {
  const rounds = short ? 5 : 50
  await setUp(url)
  // Large enough that the holder is still importing when it is frozen (a first import
  // runs at ~20,000 files/s on two cores).
  const dir = notesFolder("split-brain", 40000)
  const expected = folderHashes(dir)
  const stale = { DATABASE_URL: asUser(url, "chaos_stale") }
  const fresh = { DATABASE_URL: asUser(url, "chaos_new") }
  let staleWrites = 0
  let takeovers = 0
  const checks = tally()
  const result = checks.totals
  try {
    for (let round = 0; round < rounds; round++) {
      const source = `chaos-split-${Date.now()}-${round}`
      const args = ["sync", dir, "--source", source, "--json", "--concurrency", "1"]
      // Only the holder's lease needs to expire quickly. The successor keeps a 10 s one: on
      // two loaded cores (both imports running after SIGCONT, each with its reading thread)
      // a 2 s lease can be lost for want of CPU, which is not what this scenario checks.
      const holder = tidemark([...args, "--lease-ttl", ttl], stale)
      while ((await documentCount(url, source)) === 0) {
        if (holder.child.exitCode !== null) throw new Error("the first holder finished before it could be frozen")
        await sleep(20)
      }
      holder.child.kill("SIGSTOP")
      // Past the lease: another sync may take over (the frozen process is alive, so only expiry frees it).
      while ((await liveLease(url, source)) !== undefined) await sleep(100)
      const successor = tidemark([...args, "--lease-ttl", "10s"], fresh)
      let lease
      while ((lease = await liveLease(url, source)) === undefined || lease.pid !== successor.child.pid) {
        if (successor.child.exitCode !== null) throw new Error("the successor exited before taking the lease")
        await sleep(20)
      }
      const [{ at: takeover }] = await query(url, "SELECT acquired_at AS at FROM tidemark.locks WHERE name = $1", [
        `sync:${source}`
      ])
      takeovers++
      holder.child.kill("SIGCONT")
      const [staleExit, successorExit] = await Promise.all([holder.finished, successor.finished])
      if (successorExit.code !== 0)
        throw new Error(
          `the successor exited ${successorExit.code}: ${successorExit.stderr
            .split("\n")
            .filter((line) => !line.startsWith('{"type":"progress"'))
            .join("\n")
            .slice(-600)}`
        )
      // A run that held the lease and lost it says so and exits 75 (partial): never 0, as if it
      // had finished, or "already running; skipped".
      if (staleExit.code !== 75 || !staleExit.stderr.includes("lost lease"))
        throw new Error(
          `the stale holder exited ${staleExit.code} instead of 75 with "lost lease": ${staleExit.stdout.trim()} | ${staleExit.stderr
            .split("\n")
            .filter((line) => !line.startsWith('{"type":"progress"'))
            .join(" | ")
            .slice(-900)}`
        )
      const [{ n }] = await query(
        url,
        "SELECT count(*)::int AS n FROM public.chaos_writes WHERE source_id = $1 AND role = 'chaos_stale' AND at > $2",
        [source, takeover]
      )
      staleWrites += n
      await checks.add(url, source, expected)
    }
  } finally {
    await tearDown(url)
  }
  return {
    runs: rounds * 2,
    faults: takeovers,
    ...result,
    ok: result.equal && staleWrites === 0,
    detail: `${staleWrites} statements by the stale holder after a takeover (its lease ttl ${ttl}, the successor's 10s)`
  }
}
