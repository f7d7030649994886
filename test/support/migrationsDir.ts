/** Copies of the shipped migrations folder, for tests that add to it or edit it. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Migrations from "../../src/db/Migrations.js"

/** A migrations folder holding the shipped migrations plus `extra` files. */
export const migrationsDirWith = (extra: Record<string, string>) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-migrations-"))
  for (const file of fs.readdirSync(Migrations.defaultMigrationsDir)) {
    fs.copyFileSync(path.join(Migrations.defaultMigrationsDir, file), path.join(dir, file))
  }
  for (const [file, sql] of Object.entries(extra)) fs.writeFileSync(path.join(dir, file), sql)
  return dir
}
