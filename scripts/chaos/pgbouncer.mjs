// 7. The main pool behind PgBouncer in transaction pooling mode (Debian's
// `pgbouncer`, installed here if missing), the direct pool straight to the
// server: a full sync, a SIGKILL and its resume, a no-change sync. Locks and
// checkpoints must work through it.
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import {
  between,
  compare,
  folderHashes,
  liveLease,
  notesFolder,
  query,
  runTidemark,
  scratchDir,
  sleep,
  tidemark
} from "./lib.mjs"

export const name = "pgbouncer"

const ensureInstalled = () => {
  try {
    execFileSync("pgbouncer", ["--version"], { stdio: "ignore" })
  } catch {
    execFileSync("bash", ["-c", "apt-get update -qq && apt-get install -y -qq pgbouncer"], { stdio: "ignore" })
  }
}

const freePort = () =>
  new Promise((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })

export const run = async ({ url, paths, short }) => {
  ensureInstalled()
  const target = new URL(url)
  const user = target.username
  const database = target.pathname.slice(1)
  const dir = scratchDir("pgbouncer")
  const port = await freePort()
  fs.writeFileSync(path.join(dir, "users.txt"), `"${user}" ""\n`)
  fs.writeFileSync(
    path.join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `${database} = host=${paths.socketDir} port=5432 dbname=${database}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${path.join(dir, "users.txt")}`,
      "pool_mode = transaction",
      "default_pool_size = 4",
      "max_client_conn = 200",
      `logfile = ${path.join(dir, "pgbouncer.log")}`,
      ""
    ].join("\n")
  )
  execFileSync("chown", ["-R", "postgres", dir])
  const asServerUser = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : []
  const [command, ...args] = [...asServerUser, "pgbouncer", path.join(dir, "pgbouncer.ini")]
  const bouncer = spawn(command, args, { stdio: "ignore" })
  const env = { DATABASE_URL: `postgresql://${user}@127.0.0.1:${port}/${database}`, DIRECT_DATABASE_URL: url }
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
    bouncer.kill()
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
