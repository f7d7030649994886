/**
 * The check every command makes before its work: is the schema up to date and
 * is every registered backfill done? On an initialized database that is one
 * query, and no migration file is read (their names say which there are).
 * Anything else — a fresh database, a migration not applied, a backfill not
 * done, a name that differs from the one applied — takes the full path:
 * `Migrations.migrate`, which reads, hashes and verifies every file under the
 * migrators' lock, then `Backfills.runPending`. `tidemark migrate` always takes
 * the full path, so an applied migration edited afterwards is still refused
 * there, and at the next start that has something to apply.
 */
import { Effect } from "effect"
import * as Backfills from "./Backfills.js"
import { MainDb } from "./Database.js"
import * as Migrations from "./Migrations.js"
import { sqlStateOf, undefinedTable } from "./SqlState.js"
import { retryTransient } from "./Transient.js"

interface Recorded {
  readonly migrations: ReadonlyArray<readonly [number, string]>
  readonly backfills: ReadonlyArray<readonly [string, number]>
}

/** What the database has recorded, or none if its ledgers are not there yet. */
const recorded = Effect.gen(function* () {
  const { sql } = yield* MainDb
  const [row] = yield* sql<{ migrations: Recorded["migrations"]; backfills: Recorded["backfills"] }>`
    SELECT (SELECT coalesce(json_agg(json_build_array(id, name) ORDER BY id), '[]') FROM tidemark.schema_migrations) AS migrations,
           (SELECT coalesce(json_agg(json_build_array(step, version)), '[]') FROM tidemark.backfill_state) AS backfills`
  return row ?? null
}).pipe(
  retryTransient(),
  Effect.catchIf(
    (error) => sqlStateOf(error) === undefinedTable,
    () => Effect.succeed(null)
  )
)

/** Whether `state` already has every migration of `dir` and every registered backfill. */
const upToDate = (
  state: Recorded,
  files: ReadonlyArray<{ readonly id: number; readonly name: string }>,
  steps: ReadonlyArray<Backfills.BackfillStep>
) => {
  const applied = new Map(state.migrations)
  const done = (step: Backfills.BackfillStep) =>
    state.backfills.some(([name, version]) => name === step.name && version === step.version)
  return files.every((file) => applied.get(file.id) === file.name) && steps.every(done)
}

/** Brings the database up to date if it is not (see the header); one query when it is. */
export const ensureReady = Effect.fn("Readiness.ensureReady")(function* (
  dir: string = Migrations.defaultMigrationsDir
) {
  const files = yield* Migrations.listMigrations(dir)
  const steps = yield* Effect.flatMap(Backfills.Backfills, (backfills) => backfills.steps)
  const state = yield* recorded
  if (state !== null && upToDate(state, files, steps)) return
  yield* Migrations.migrate(dir)
  yield* Backfills.runPending()
})
