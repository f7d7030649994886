// 11. The fleet: three `tidemark worker`s, their main pools through PgBouncer in
// transaction mode (their direct pools straight to the server), twenty sources
// (folders, git repositories by file:// URL, JSONL folders) changing and queued
// for sync the whole time. A random worker is SIGKILLed every few seconds and
// replaced; once, one holding a sync is frozen with SIGSTOP past its lease, then
// resumed. Every worker runs as a database role of its own, and a statement
// trigger on the documents and entries records each write with the role that
// made it and the pid holding the source's lease at that moment: a write by any
// other role than the lease holder's is a stale write (the fence must make it
// impossible). After the faults stop, a last round of jobs runs and every source
// must equal its files. Reports the takeover times: from a kill (or the freeze)
// to another worker being granted the source's lease (a trigger records every grant).
import * as fs from "node:fs"
import * as path from "node:path"
import { bossClient } from "../bench/lib.mjs"
import {
  asUser,
  between,
  compare,
  fileEntries,
  folderHashes,
  git,
  notesFolder,
  query,
  runTidemark,
  scratchDir,
  sleep,
  startBouncer,
  storedEntries,
  tidemark,
  tree
} from "./lib.mjs"

export const name = "fleet"

const roleCount = 80
const roleOf = (n) => `chaos_fleet_${n}`

const setUp = async (url) => {
  await query(
    url,
    `DO $$ BEGIN FOR i IN 1..${roleCount} LOOP
       BEGIN EXECUTE format('CREATE ROLE chaos_fleet_%s LOGIN SUPERUSER', i); EXCEPTION WHEN duplicate_object THEN NULL; END;
     END LOOP; END $$`
  )
  await query(
    url,
    `CREATE TABLE IF NOT EXISTS public.chaos_fleet_writes (role text NOT NULL, holder_pid int, source_id text, at timestamptz NOT NULL);
     TRUNCATE public.chaos_fleet_writes;
     CREATE OR REPLACE FUNCTION public.chaos_fleet_write() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       INSERT INTO public.chaos_fleet_writes
         SELECT current_user, (SELECT pid FROM tidemark.locks WHERE name = 'sync:' || c.source_id), c.source_id, clock_timestamp()
           FROM (SELECT DISTINCT source_id FROM changed) c;
       RETURN NULL;
     END $$;`
  )
  // Every grant of a lease (a new row, or a new token on an existing one), with the
  // server's clock: a takeover is seen even when its sync holds the lease for less
  // time than one poll of the table would take.
  await query(
    url,
    `CREATE TABLE IF NOT EXISTS public.chaos_fleet_grants (name text NOT NULL, pid int NOT NULL, at timestamptz NOT NULL);
     TRUNCATE public.chaos_fleet_grants;
     CREATE OR REPLACE FUNCTION public.chaos_fleet_grant() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       INSERT INTO public.chaos_fleet_grants VALUES (NEW.name, NEW.pid, clock_timestamp());
       RETURN NULL;
     END $$;
     DROP TRIGGER IF EXISTS chaos_fleet_grant ON tidemark.locks;
     CREATE TRIGGER chaos_fleet_grant AFTER INSERT OR UPDATE OF token ON tidemark.locks
       FOR EACH ROW EXECUTE FUNCTION public.chaos_fleet_grant();`
  )
  for (const table of ["documents", "entries"]) {
    for (const op of ["INSERT", "UPDATE"]) {
      await query(
        url,
        `DROP TRIGGER IF EXISTS chaos_fleet_${op.toLowerCase()} ON tidemark.${table};
         CREATE TRIGGER chaos_fleet_${op.toLowerCase()} AFTER ${op} ON tidemark.${table}
           REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION public.chaos_fleet_write();`
      )
    }
  }
}

const tearDown = async (url) => {
  await query(url, "DROP TRIGGER IF EXISTS chaos_fleet_grant ON tidemark.locks")
  for (const table of ["documents", "entries"]) {
    await query(
      url,
      `DROP TRIGGER IF EXISTS chaos_fleet_insert ON tidemark.${table}; DROP TRIGGER IF EXISTS chaos_fleet_update ON tidemark.${table};`
    )
  }
}

/** The twenty sources: 12 folders, 4 git repositories (by URL), 4 JSONL folders. */
const makeSources = (short) => {
  const sources = []
  for (let i = 0; i < 12; i++) {
    sources.push({ name: `fleet-dir-${i}`, kind: "dir", dir: notesFolder(`fleet-dir-${i}`, short ? 1500 : 3000) })
  }
  for (let i = 0; i < 4; i++) {
    const dir = notesFolder(`fleet-git-${i}`, 800)
    git(dir, "init", "-q", "-b", "main")
    git(dir, "add", "-A")
    git(dir, "commit", "-q", "-m", "initial")
    sources.push({ name: `fleet-git-${i}`, kind: "git", dir })
  }
  for (let i = 0; i < 4; i++) {
    const dir = scratchDir(`fleet-jsonl-${i}`)
    for (let f = 0; f < 5; f++) {
      const lines = Array.from({ length: 2000 }, (_, n) =>
        JSON.stringify({ role: "user", n, text: `entry ${n} of ${f}` })
      )
      fs.writeFileSync(path.join(dir, `log-${f}.jsonl`), `${lines.join("\n")}\n`)
    }
    sources.push({ name: `fleet-jsonl-${i}`, kind: "jsonl", dir })
  }
  return sources
}

/** A change to a source between rounds: files edited and added, a commit, lines appended. */
const change = (source, round) => {
  if (source.kind === "jsonl") {
    const file = path.join(source.dir, `log-${round % 5}.jsonl`)
    fs.appendFileSync(file, `${JSON.stringify({ role: "assistant", round, text: `appended in round ${round}` })}\n`)
    return
  }
  const folder = path.join(source.dir, `d${round % 50}`)
  fs.mkdirSync(folder, { recursive: true })
  fs.writeFileSync(path.join(folder, `round-${round}.md`), `# round ${round}\n`)
  const edited = fs.readdirSync(folder).find((n) => n.startsWith("note-"))
  if (edited !== undefined) fs.appendFileSync(path.join(folder, edited), `\nedited in round ${round}\n`)
  if (source.kind === "git") {
    git(source.dir, "add", "-A")
    git(source.dir, "commit", "-q", "-m", `round ${round}`)
  }
}

const equalTo = async (url, source) => {
  if (source.kind === "dir") return compare(url, source.name, folderHashes(source.dir))
  if (source.kind === "git") {
    const expected = tree(source.dir, "HEAD")
    const rows = await query(url, "SELECT key, source_version FROM tidemark.documents WHERE source_id = $1", [
      source.name
    ])
    const have = new Map(rows.map((r) => [r.key, r.source_version]))
    let lost = 0
    for (const [key, oid] of expected) if (have.get(key) !== oid) lost++
    for (const key of have.keys()) if (!expected.has(key)) lost++
    const duplicates = rows.length - have.size
    return { lost, duplicates, equal: lost === 0 && duplicates === 0 }
  }
  const expected = fileEntries(source.dir)
  const stored = await storedEntries(url, source.name)
  let lost = 0
  let duplicates = 0
  for (const [file, hashes] of expected) {
    const have = stored.get(file) ?? []
    if (have.length > hashes.length) duplicates += have.length - hashes.length
    hashes.forEach((h, i) => {
      if (have[i] !== h) lost++
    })
  }
  return { lost, duplicates, equal: lost === 0 && duplicates === 0 && stored.size === expected.size }
}

const percentile = (xs, p) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

export const run = async ({ url, paths, short }) => {
  const duration = short ? 45_000 : 120_000
  await setUp(url)
  const bouncer = await startBouncer(
    url,
    paths,
    Array.from({ length: roleCount }, (_, i) => roleOf(i + 1)),
    8
  )
  const sources = makeSources(short)
  const failures = []
  for (const source of sources) {
    const location = source.kind === "git" ? `file://${source.dir}` : source.dir
    const added = await runTidemark(
      ["source", "add", source.name, location, ...(source.kind === "jsonl" ? ["--jsonl"] : []), "--allow-mass-change"],
      { DATABASE_URL: url }
    )
    if (added.code !== 0) throw new Error(`source add ${source.name}: ${added.stderr}`)
  }
  const boss = await bossClient(url)
  const enqueueAll = () =>
    Promise.all(sources.map((s) => boss.send("tidemark-sync", { source: s.name }, { singletonKey: s.name })))

  // Worker slots: a killed worker is replaced at once, as a new role (a new machine).
  let nextRole = 1
  const rolesByPid = new Map()
  const workers = []
  const startWorker = () => {
    const role = roleOf(nextRole++)
    if (nextRole > roleCount) throw new Error("out of roles")
    const home = scratchDir("fleet-home")
    const w = tidemark(["worker", "--concurrency", "2", "--queues", "sync"], {
      DATABASE_URL: bouncer.urlFor(role),
      DIRECT_DATABASE_URL: asUser(url, role),
      TIDEMARK_HOME: home
    })
    rolesByPid.set(w.child.pid, role)
    // Each worker's log, kept in the scratch folder (with it, after a failing run).
    void w.finished.then((e) =>
      fs.writeFileSync(path.join(home, "worker.log"), `${e.stderr}\nexit ${e.code ?? e.signal}\n`)
    )
    return w
  }
  for (let i = 0; i < 3; i++) workers.push(startWorker())

  const holdersOf = async (pid) =>
    (
      await query(url, "SELECT name FROM tidemark.locks WHERE name LIKE 'sync:%' AND pid = $1 AND expires_at > now()", [
        pid
      ])
    ).map((r) => r.name)
  const takeovers = []
  const frozenTakeovers = []
  const pending = []
  /**
   * Waits (in the background) until another worker has been granted each lease the
   * victim held. `from` is the wall-clock time of the fault (the server runs on this
   * machine, so its clock is the same one).
   */
  const watchTakeover = (victimPid, leases, from, into = takeovers) => {
    for (const lease of leases) {
      pending.push(
        (async () => {
          const deadline = performance.now() + 120_000
          while (performance.now() < deadline) {
            const [row] = await query(
              url,
              `SELECT (extract(epoch FROM min(at)) * 1000)::float8 AS at FROM public.chaos_fleet_grants
                WHERE name = $1 AND pid <> $2 AND at > to_timestamp($3 / 1000.0)`,
              [lease, victimPid, from]
            )
            if (row.at !== null) return into.push((row.at - from) / 1000)
            await sleep(500)
          }
          failures.push(`${lease}: not taken over within 120 s of its holder's fault`)
        })()
      )
    }
  }

  let kills = 0
  let round = 0
  let frozen = false
  const started = performance.now()
  await enqueueAll()
  try {
    while (performance.now() - started < duration) {
      await sleep(between(2500, 5000))
      round++
      for (const source of sources) if (Math.random() < 0.5) change(source, round)
      await enqueueAll()
      const slot = Math.floor(Math.random() * workers.length)
      const victim = workers[slot]
      const leases = await holdersOf(victim.child.pid)
      if (!frozen && leases.length > 0 && performance.now() - started > duration / 4) {
        // Frozen past its lease (30 s) and its job's heartbeat (10 s), then let go: it must not write again.
        frozen = true
        const at = Date.now()
        victim.child.kill("SIGSTOP")
        watchTakeover(victim.child.pid, leases, at, frozenTakeovers)
        const replacement = startWorker()
        workers[slot] = replacement
        setTimeout(() => {
          victim.child.kill("SIGCONT")
          // Once it has found its lease gone it is stopped for good.
          setTimeout(() => victim.child.kill("SIGTERM"), 3000)
        }, 45_000)
        pending.push(victim.finished)
        continue
      }
      const at = Date.now()
      victim.child.kill("SIGKILL")
      kills++
      await victim.finished
      if (leases.length > 0) watchTakeover(victim.child.pid, leases, at)
      workers[slot] = startWorker()
    }
    // Faults stop; a last round of jobs brings every source to its files.
    await Promise.all(pending)
    await enqueueAll()
    const deadline = performance.now() + 120_000
    for (;;) {
      const [{ n }] = await query(
        url,
        "SELECT count(*)::int AS n FROM tidemark_boss.job WHERE name = 'tidemark-sync' AND state::text IN ('created', 'retry', 'active')"
      )
      if (n === 0) break
      if (performance.now() > deadline) {
        failures.push(`${n} sync jobs still queued or running 2 minutes after the faults stopped`)
        break
      }
      await sleep(500)
    }
  } finally {
    for (const w of workers) w.child.kill("SIGTERM")
    const exits = await Promise.all(workers.map((w) => w.finished))
    for (const e of exits)
      if (e.code !== 143) failures.push(`a worker exited ${e.code ?? e.signal} on SIGTERM, not 143`)
    await boss.stop({ graceful: false, close: true })
    bouncer.stop()
    await tearDown(url)
  }

  let lost = 0
  let duplicates = 0
  let equal = true
  for (const source of sources) {
    const check = await equalTo(url, source)
    lost += check.lost
    duplicates += check.duplicates
    if (!check.equal) {
      equal = false
      failures.push(`${source.name} differs from its files (${check.lost} lost, ${check.duplicates} duplicated)`)
    }
  }
  const writes = await query(url, "SELECT role, holder_pid, source_id FROM public.chaos_fleet_writes")
  const stale = writes.filter((w) => w.holder_pid === null || rolesByPid.get(w.holder_pid) !== w.role)
  if (stale.length > 0) failures.push(`${stale.length} writes by a worker that did not hold the source's lease`)
  // pg-boss dead-letters a job whose heartbeat lapsed while another job of the same source
  // already waited for its retry (the stately queue holds one retry per source): that one
  // carries the work on. Any other dead-lettered job is a failure.
  const dead = await query(
    url,
    `SELECT d.data->>'source' AS source, d.output FROM tidemark_boss.job d
      WHERE d.name = 'tidemark-dead'
        AND NOT EXISTS (SELECT 1 FROM tidemark_boss.job j WHERE j.name = 'tidemark-sync'
                         AND j.singleton_key = d.data->>'source' AND j.state = 'completed' AND j.completed_on > d.created_on)`
  )
  if (dead.length > 0) {
    failures.push(
      `${dead.length} jobs dead-lettered with nothing after them (the first: ${dead[0].source}, ${JSON.stringify(dead[0].output)})`
    )
  }
  const [{ covered }] = await query(
    url,
    "SELECT count(*)::int AS covered FROM tidemark_boss.job WHERE name = 'tidemark-dead'"
  )
  const distribution =
    takeovers.length === 0
      ? "no lease was held at a kill"
      : `takeover after a fault: n=${takeovers.length}, median ${percentile(takeovers, 50).toFixed(1)} s, p90 ${percentile(takeovers, 90).toFixed(1)} s, max ${Math.max(...takeovers).toFixed(1)} s`
  if (takeovers.some((t) => t > 30)) failures.push(`a takeover took longer than 30 s (${distribution})`)
  const frozenNote =
    frozenTakeovers.length === 0
      ? ""
      : `; the frozen worker's ${frozenTakeovers.length} lease(s) taken over after ${frozenTakeovers.map((t) => t.toFixed(1)).join(", ")} s (its lease ttl is 30 s)`
  return {
    runs: writes.length,
    faults: kills + (frozen ? 1 : 0),
    lost,
    duplicates,
    equal,
    ok: equal && failures.length === 0,
    detail:
      failures.length === 0
        ? `3 workers through PgBouncer, 20 sources, ${kills} SIGKILLs and ${frozen ? "one" : "no"} SIGSTOP in ${duration / 1000} s; 0 stale writes of ${writes.length}; ${distribution}${frozenNote}; ${covered} jobs dead-lettered by pg-boss while a retry of their source waited, each followed by a completed sync`
        : `${failures.join("; ")} (${distribution}${frozenNote})`
  }
}
