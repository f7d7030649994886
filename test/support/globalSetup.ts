/**
 * One PostgreSQL per test run: the embedded server in a scratch home, or the
 * server named by DATABASE_URL. Each test file then makes its own database
 * (see TestDatabase).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Exit, Scope } from "effect"
import type { TestProject } from "vitest/node"
import * as EmbeddedServer from "../../src/db/embedded/EmbeddedServer.js"
import { socketUrl } from "../../src/db/embedded/paths.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** A URL of the test server's `postgres` database, with rights to create databases. */
    adminUrl: string
  }
}

/**
 * Every scratch folder of the run (folders to sync, repositories, server homes)
 * is made under one folder, removed at the end: the test workers and the CLI
 * processes they start inherit it as their TMPDIR. Readable by all, since the
 * embedded servers run as `postgres` when the tests run as root.
 */
const scratchForTheRun = () => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-test-run-"))
  fs.chmodSync(scratch, 0o755)
  process.env["TMPDIR"] = scratch
  return () => fs.rmSync(scratch, { recursive: true, force: true })
}

export default async function setup(project: TestProject) {
  const removeScratch = scratchForTheRun()
  const external = process.env["DATABASE_URL"]
  if (external !== undefined && external !== "") {
    project.provide("adminUrl", external)
    return removeScratch
  }
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-test-"))
  const scope = Effect.runSync(Scope.make())
  const server = await Effect.runPromise(Scope.extend(EmbeddedServer.make(home), scope))
  project.provide("adminUrl", socketUrl(server.paths, "postgres"))
  return async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    removeScratch()
  }
}
