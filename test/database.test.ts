import { SqlError } from "@effect/sql/SqlError"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { DirectDb, MainDb, onDirect, transaction } from "../src/db/Database.js"
import { textArray } from "../src/db/TextArray.js"
import { classify } from "../src/db/Transient.js"
import * as TestDatabase from "./support/TestDatabase.js"

class Rollback extends Error {}

const setup = Effect.flatMap(
  MainDb,
  ({ sql }) => sql`CREATE TABLE IF NOT EXISTS marks (pool text NOT NULL, note text NOT NULL)`
)

const marks = (note: string) =>
  Effect.flatMap(
    MainDb,
    ({ sql }) => sql<{ pool: string }>`SELECT pool FROM marks WHERE note = ${note} ORDER BY pool`
  ).pipe(Effect.map((rows) => rows.map((r) => r.pool)))

layer(TestDatabase.layer("pools"), { excludeTestServices: true })("MainDb and DirectDb", (it) => {
  it.effect("are separate pools that name themselves to the server", () =>
    Effect.gen(function* () {
      const main = yield* MainDb
      const direct = yield* DirectDb
      expect(main.sql).not.toBe(direct.sql)
      const [m] = yield* main.sql<{ name: string }>`SELECT current_setting('application_name') AS name`
      const [d] = yield* direct.sql<{ name: string }>`SELECT current_setting('application_name') AS name`
      expect(m?.name).toBe("tidemark:main")
      expect(d?.name).toBe("tidemark:direct")
    })
  )

  it.effect("sends text arrays in binary: any text, as strings or UTF-8 bytes, nulls and empty arrays included", () =>
    Effect.gen(function* () {
      const { sql } = yield* MainDb
      const values = ["", "NULL", 'a "quoted", {braced} \\ value', "new\nline\ttab", "日本語 🌊", "x".repeat(10_000)]
      const bytes = values.map((value) => Buffer.from(`bytes: ${value}`).subarray(7))
      for (const sent of [values, [], ["one"], [null], ["a", null, "b"], bytes, [bytes[4]!, null, "string"]]) {
        const [row] = yield* sql<{ got: ReadonlyArray<string | null> }>`SELECT ${textArray(sent)}::text[] AS got`
        expect(row?.got).toEqual(
          sent.map((value) => (value instanceof Uint8Array ? Buffer.from(value).toString() : value))
        )
      }
    })
  )

  it.effect("a DirectDb write made inside a MainDb transaction that rolls back still lands", () =>
    Effect.gen(function* () {
      yield* setup
      const main = yield* MainDb
      const attempt = transaction(main.sql)(
        Effect.gen(function* () {
          yield* main.sql`INSERT INTO marks VALUES ('main', 'escape')`
          yield* onDirect((sql) => sql`INSERT INTO marks VALUES ('direct', 'escape')`)
          return yield* Effect.fail(new Rollback())
        })
      )
      yield* Effect.flip(attempt)
      expect(yield* marks("escape")).toEqual(["direct"])
    })
  )

  it.effect("without the escape, the same DirectDb write silently joins the MainDb transaction (the pitfall)", () =>
    Effect.gen(function* () {
      yield* setup
      const main = yield* MainDb
      const direct = yield* DirectDb
      yield* Effect.flip(
        transaction(main.sql)(
          Effect.gen(function* () {
            yield* direct.sql`INSERT INTO marks VALUES ('direct', 'joined')`
            return yield* Effect.fail(new Rollback())
          })
        )
      )
      expect(yield* marks("joined")).toEqual([])
    })
  )

  it.effect("a DirectDb transaction inside a MainDb transaction commits on its own", () =>
    Effect.gen(function* () {
      yield* setup
      const main = yield* MainDb
      yield* Effect.flip(
        transaction(main.sql)(
          Effect.gen(function* () {
            yield* onDirect((sql) => transaction(sql)(sql`INSERT INTO marks VALUES ('direct', 'nested')`))
            return yield* Effect.fail(new Rollback())
          })
        )
      )
      expect(yield* marks("nested")).toEqual(["direct"])
    })
  )

  it.effect("a failure at COMMIT comes back as a typed, classified SqlError instead of a defect", () =>
    Effect.gen(function* () {
      const main = yield* MainDb
      yield* main.sql`CREATE TABLE IF NOT EXISTS deferred (id int UNIQUE DEFERRABLE INITIALLY DEFERRED)`
      const error = yield* Effect.flip(transaction(main.sql)(main.sql`INSERT INTO deferred VALUES (1), (1)`))
      expect(error).toBeInstanceOf(SqlError)
      expect((error.cause as { code?: string }).code).toBe("23505")
      expect(classify(error)).toBe("permanent")
      const [count] = yield* main.sql<{ n: number }>`SELECT count(*)::int AS n FROM deferred`
      expect(count?.n).toBe(0)
    })
  )
})
