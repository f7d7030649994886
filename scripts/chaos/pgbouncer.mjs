// 7. The main pool behind PgBouncer in transaction pooling mode (Debian's
// `pgbouncer`, installed here if missing), the direct pool straight to the
// server: a full sync, a SIGKILL and its resume, a no-change sync. Locks and
// checkpoints must work through it.
import {
  between,
  compare,
  folderHashes,
  liveLease,
  notesFolder,
  query,
  runTidemark,
  sleep,
  startBouncer,
  tidemark
} from "./lib.mjs"

export const name = "pgbouncer"

export const run = async ({ url, paths, short }) => {
  const bouncer = await startBouncer(url, paths, [new URL(url).username])
  const env = { DATABASE_URL: bouncer.urlFor(new URL(url).username), DIRECT_DATABASE_URL: url }
  const failures = []
  const folder = notesFolder("pgbouncer", short ? 10000 : 30000)
  const source = `chaos-pgbouncer-${Date.now()}`
  let runs = 0
  try {
    for (let i = 0; i < 50 && (await runTidemark(["db", "--json"], env)).code !== 0; i++) await sleep(100)
    // Killed once mid-sync, then resumed, all through PgBouncer.
    runs++
    const { child, finished } = tidemark(["sync", folder, "--source", source, "--json"], env)
    await sleep(between(1500, 2500))
    child.kill("SIGKILL")
    await finished
    runs++
    const resumed = await runTidemark(["sync", folder, "--source", source, "--json"], env)
    if (resumed.code !== 0)
      failures.push(`resume exited ${resumed.code}: ${resumed.stderr.split("\n").filter(Boolean).at(-1)}`)
    runs++
    const again = await runTidemark(["sync", folder, "--source", source, "--json"], env)
    if (again.code !== 0 || JSON.parse(again.stdout).read !== 0) failures.push("the no-change sync read or failed")
    const [op] = await query(
      url,
      "SELECT count(*)::int AS open FROM tidemark.ops WHERE source_id = $1 AND status = 'open'",
      [source]
    )
    if (op.open !== 0) failures.push("an op is still open")
    const [items] = await query(
      url,
      "SELECT count(*)::int AS n FROM tidemark.op_items i JOIN tidemark.ops o ON o.id = i.op_id WHERE o.source_id = $1",
      [source]
    )
    if (items.n !== 0) failures.push("banked items of finished ops were left")
    if ((await liveLease(url, source)) !== undefined) failures.push("the lease is still held")
  } finally {
    bouncer.stop()
  }
  const check = await compare(url, source, folderHashes(folder))
  return {
    runs,
    faults: 1,
    lost: check.lost,
    duplicates: check.duplicates,
    equal: check.equal,
    ok: check.equal && failures.length === 0,
    detail:
      failures.length === 0
        ? "sync, SIGKILL + resume and a no-change sync through PgBouncer 1.x (transaction pooling); ops closed, items cleared, lease free"
        : failures.join("; ")
  }
}
