// Shared by the benchmark scripts: a database (the embedded server in a
// scratch home, or $DATABASE_URL), corpora of files, timing and reporting.
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import pg from "pg"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Exit, Option, Redacted, Scope } from "effect"
import { DbSettings, EmbeddedServer } from "../../dist/index.js"

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
export const cli = path.join(root, "bin", "tidemark.js")

export const machine = () =>
  `node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`

/**
 * Points the temporary folder of this process and of the processes it starts
 * (TMPDIR) at a fresh folder under the current one; returns it and a function
 * that removes it. Readable by all: an embedded server inside runs as
 * `postgres` when the script runs as root.
 */
export const scratchTmpdir = (label) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tidemark-${label}-`))
  fs.chmodSync(dir, 0o755)
  process.env.TMPDIR = dir
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

/** A database URL for the run, and a function that stops what was started (and removes its home). */
export const database = async () => {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, home: undefined, stop: async () => {} }
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-bench-"))
  const scope = Effect.runSync(Scope.make())
  const server = await Effect.runPromise(Scope.extend(EmbeddedServer.make(home), scope))
  return {
    url: Redacted.value(server.url),
    home,
    stop: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      fs.rmSync(home, { recursive: true, force: true })
    }
  }
}

/** Settings for tidemark's layers in a benchmark process: `url`, two connections per pool. */
export const settingsLayer = (url) =>
  DbSettings.layer({
    databaseUrl: Option.some(Redacted.make(url)),
    directDatabaseUrl: Option.none(),
    home: "/unused",
    mainPoolSize: 2,
    directPoolSize: 2
  })

const past = new Date(Date.UTC(2025, 0, 1))

/** `count` Markdown files of about `bytes` bytes in 100 folders, all with an old mtime. */
export const corpus = (dir, count, bytes = 2048) => {
  const marker = `${dir}.corpus`
  if (fs.existsSync(marker) && fs.readFileSync(marker, "utf8") === `${count}:${bytes}`) return dir
  fs.rmSync(dir, { recursive: true, force: true })
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `d${i % 100}`, `note-${i}.md`)
    if (i < 100) fs.mkdirSync(path.dirname(file), { recursive: true })
    const head = `---\ntitle: Note ${i}\ntags: [t${i % 13}]\n---\n# Note ${i}\n\n`
    const line = `Line of note ${i}, words words words. `
    fs.writeFileSync(file, head + line.repeat(Math.max(0, Math.ceil((bytes - head.length) / line.length))))
    fs.utimesSync(file, past, past)
  }
  fs.writeFileSync(marker, `${count}:${bytes}`)
  return dir
}

/**
 * Reads every file under `dir` once, so that what is measured next runs on a
 * warm page cache (a cold first run would pay for the disk, the others not).
 */
export const warm = (dir) => {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) warm(path.join(dir, entry.name))
    else if (entry.isFile()) fs.readFileSync(path.join(dir, entry.name))
  }
}

/**
 * CPU seconds used so far by every PostgreSQL process of this machine, the
 * backends that already exited included (their postmaster's children's time).
 */
export const serverCpuSeconds = () => {
  const ticks = 100 // USER_HZ on Linux
  let total = 0
  for (const pid of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
      if (!stat.includes("(postgres)")) continue
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      total += fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0) / ticks
    } catch {
      // The process ended while being looked at.
    }
  }
  return total
}

/**
 * Runs the CLI (`bin`: another build's) and resolves with wall seconds, peak
 * RSS (MiB), CPU seconds of the CLI process (all its threads) and of the
 * database server meanwhile, and its output.
 */
export const runCli = (args, env, bin = cli) =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    const serverBefore = serverCpuSeconds()
    const child = spawn("/usr/bin/time", ["-f", "%M %U %S", process.execPath, bin, ...args], {
      env: { ...process.env, TIDEMARK_MAINTENANCE: "off", ...env }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code) => {
      const seconds = (performance.now() - started) / 1000
      const [rssKb, user, system] = stderr.trim().split("\n").at(-1).split(" ").map(Number)
      if (code !== 0) return reject(new Error(`tidemark ${args.join(" ")} exited ${code}: ${stderr}`))
      resolve({
        seconds,
        peakMiB: rssKb / 1024,
        cpuSeconds: user + system,
        serverCpuSeconds: serverCpuSeconds() - serverBefore,
        stdout,
        stderr
      })
    })
  })

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** One query on a connection of its own (`url`): rows. */
export const queryOnce = async (url, text, values = []) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text, values)).rows
  } finally {
    await client.end()
  }
}

/**
 * A started pg-boss client of the fleet's schema that only sends (no supervision, no
 * schedules, no migration): what a benchmark or a chaos scenario queues jobs with.
 * pg-boss needs Node 22: loaded here only when asked for.
 */
export const bossClient = async (url) => {
  const { PgBoss } = await import("pg-boss")
  const boss = new PgBoss({
    connectionString: url,
    schema: "tidemark_boss",
    supervise: false,
    schedule: false,
    migrate: false
  })
  boss.on("error", () => {})
  await boss.start()
  return boss
}
