/** The payer's rules (test/support/debtBehaviour.ts) on both stores. */
import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect, Layer, TestClock, TestContext } from "effect"
import { MainDb } from "../src/db/Database.js"
import * as Migrations from "../src/db/Migrations.js"
import * as LeaseLock from "../src/lock/LeaseLock.js"
import * as MemoryLeaseStore from "../src/lock/MemoryLeaseStore.js"
import * as PgLeaseStore from "../src/lock/PgLeaseStore.js"
import * as MemoryDebtStore from "../src/maintenance/MemoryDebtStore.js"
import * as PgDebtStore from "../src/maintenance/PgDebtStore.js"
import * as PgRunners from "../src/maintenance/PgRunners.js"
import { Runners } from "../src/maintenance/Runners.js"
import { Advance, debtBehaviour, type Provide, scripted } from "./support/debtBehaviour.js"
import * as TestDatabase from "./support/TestDatabase.js"

describe("maintenance payer, stores in memory (TestClock)", () => {
  layer(Layer.empty)((it) => {
    const provide: Provide<never> = (self, script) =>
      Effect.scoped(
        self.pipe(
          Effect.provide(
            Layer.mergeAll(
              scripted(script),
              LeaseLock.layer,
              Layer.succeed(Advance, (by) => TestClock.adjust(by))
            ).pipe(Layer.provideMerge(Layer.merge(MemoryDebtStore.layer, MemoryLeaseStore.layer)))
          )
        )
      )
    debtBehaviour(it, provide)
  })
})

layer(Layer.provideMerge(Layer.effectDiscard(Effect.orDie(Migrations.migrate())), TestDatabase.layer("maintenance")), {
  excludeTestServices: true
})("maintenance payer, PostgreSQL", (it) => {
  const provide: Provide<MainDb | import("../src/db/Database.js").DirectDb> = (self, script) =>
    Effect.flatMap(MainDb, ({ sql }) =>
      Effect.scoped(
        self.pipe(
          Effect.provide(
            Layer.mergeAll(
              scripted(script),
              LeaseLock.layer,
              // The database's clock cannot be moved: the debt's times move into the past instead.
              Layer.succeed(Advance, (by) =>
                sql`UPDATE tidemark.maintenance_debt
                       SET next_attempt_at = next_attempt_at - ${Duration.toMillis(Duration.decode(by))} * interval '1 millisecond'`.pipe(
                  Effect.orDie,
                  Effect.asVoid
                )
              )
            ).pipe(Layer.provideMerge(Layer.merge(PgDebtStore.layer, PgLeaseStore.layer)))
          )
        )
      )
    ).pipe(Effect.provide(TestContext.TestContext))
  debtBehaviour(it, provide)
})

layer(Layer.provideMerge(Layer.effectDiscard(Effect.orDie(Migrations.migrate())), TestDatabase.layer("purge")), {
  excludeTestServices: true
})("maintenance purge, PostgreSQL", (it) => {
  it.effect(
    "keeps the newest closed ops and the open one; drops old run state and the errors of gone JSONL files",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* MainDb
        yield* sql`INSERT INTO tidemark.sources (id, kind, root) VALUES ('logs', 'jsonl', '/logs')`
        yield* sql`INSERT INTO tidemark.ops (source_id, target, status, fencing_token)
                 SELECT 'logs', '{}'::jsonb, 'done', n FROM generate_series(1, 14) n`
        yield* sql`INSERT INTO tidemark.ops (source_id, target, fencing_token) VALUES ('logs', '{}'::jsonb, 15)`
        yield* sql`INSERT INTO tidemark.op_items (op_id, key, version) SELECT id, 'k', 'v' FROM tidemark.ops`
        yield* sql`INSERT INTO tidemark.jsonl_files (source_id, path, gone) VALUES
                   ('logs', 'old.jsonl', true), ('logs', 'app.jsonl', false), ('logs', 'app.jsonl.1', true)`
        yield* sql`INSERT INTO tidemark.item_errors (source_id, key, error) VALUES
                   ('logs', 'old.jsonl:3', 'not JSON'), ('logs', 'old.jsonl', 'unreadable'),
                   ('logs', 'app.jsonl:7', 'not JSON'), ('logs', 'app.jsonl.1:2', 'not JSON'),
                   ('logs', 'never-read.jsonl', 'unreadable')`
        yield* sql`INSERT INTO tidemark.run_state (source_id, identity, counts, rate, flushed_at)
                 VALUES ('logs', '{}', '{}', '{}', now() - interval '40 days')`

        const runners = yield* Runners
        const purged = yield* runners.run("logs", "purge", () => Effect.void)

        const ops = yield* sql<{ status: string; n: number }>`
        SELECT status, count(*)::int AS n FROM tidemark.ops GROUP BY status ORDER BY status`
        expect(ops).toEqual([
          { status: "done", n: 10 },
          { status: "open", n: 1 }
        ])
        const items = yield* sql<{ status: string }>`
        SELECT o.status FROM tidemark.op_items i JOIN tidemark.ops o ON o.id = i.op_id`
        expect(items.map((r) => r.status)).toEqual(["open"])
        const errors = yield* sql<{ key: string }>`SELECT key FROM tidemark.item_errors ORDER BY key`
        expect(errors.map((r) => r.key)).toEqual(["app.jsonl:7", "never-read.jsonl"])
        // The open op keeps its run state alive whatever its age.
        const states = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM tidemark.run_state`
        expect(states[0]!.n).toBe(1)
        expect(purged).toBe(4 + 3)

        yield* sql`UPDATE tidemark.ops SET status = 'abandoned' WHERE status = 'open'`
        yield* runners.run("logs", "purge", () => Effect.void)
        const after = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM tidemark.run_state`
        expect(after[0]!.n).toBe(0)
      }).pipe(Effect.provide(PgRunners.layer))
  )

  it.effect("a deleted document takes its links and names with it: nothing left for purge to scan", () =>
    Effect.gen(function* () {
      const { sql } = yield* MainDb
      yield* sql`INSERT INTO tidemark.sources (id, kind, root) VALUES ('notes', 'dir', '/notes')`
      yield* sql`INSERT INTO tidemark.documents (source_id, key, version, source_version, size, content, title)
                 VALUES ('notes', 'a.md', 'v1', 'v1', 1, '[b](b.md) [[C]]', 'A'), ('notes', 'b.md', 'v1', 'v1', 1, 'b', 'B')`
      const runners = yield* Runners
      expect(yield* runners.run("notes", "links", () => Effect.void)).toBe(2)
      const count = (table: "link_refs" | "link_names") =>
        Effect.map(
          sql<{ n: number }>`SELECT count(*)::int AS n FROM tidemark.${sql(table)} WHERE source_id = 'notes'`,
          (rows) => rows[0]!.n
        )
      expect(yield* count("link_refs")).toBe(2)
      expect(yield* count("link_names")).toBeGreaterThanOrEqual(2)
      yield* sql`DELETE FROM tidemark.documents WHERE source_id = 'notes'`
      expect(yield* count("link_refs")).toBe(0)
      expect(yield* count("link_names")).toBe(0)
    }).pipe(Effect.provide(PgRunners.layer))
  )

  it.effect("after a large payment, the few documents changed since are found through each kind's own index", () =>
    Effect.gen(function* () {
      const { sql } = yield* MainDb
      yield* sql`INSERT INTO tidemark.sources (id, kind, root) VALUES ('big', 'dir', '/big')`
      yield* sql`INSERT INTO tidemark.documents (source_id, key, version, source_version, size, content, title)
                 SELECT 'big', 'n' || i || '.md', 'v1', 'v1', 1, repeat('words ', 300) || i, 'N' || i
                   FROM generate_series(1, 3000) AS i`
      yield* sql`INSERT INTO tidemark.maintenance_debt (source_id, kind, pending_since, changed)
                 VALUES ('big', 'analyze', now(), 3000)`
      const runners = yield* Runners
      expect(yield* runners.run("big", "search", () => Effect.void)).toBe(3000)
      expect(yield* runners.run("big", "links", () => Effect.void)).toBe(3000)
      expect(yield* runners.run("big", "analyze", () => Effect.void)).toBe(1)
      // Five change, as the documents sink writes them.
      yield* sql`UPDATE tidemark.documents SET version = 'v2', tsv = NULL, links_version = NULL
                  WHERE source_id = 'big' AND key IN ('n1.md', 'n2.md', 'n3.md', 'n4.md', 'n5.md')`
      const plan = (predicate: string) =>
        Effect.map(
          sql.unsafe<{ "QUERY PLAN": string }>(
            `EXPLAIN SELECT key FROM tidemark.documents WHERE source_id = 'big' AND ${predicate} AND key > '' ORDER BY key LIMIT 2000`
          ),
          (rows) => rows.map((r) => r["QUERY PLAN"]).join("\n")
        )
      // The one index of both kinds (0008) was estimated to hold every document: the payment
      // scanned the whole table to find five.
      expect(yield* plan("tsv IS NULL")).toContain("documents_search_due")
      expect(yield* plan("links_version IS NULL")).toContain("documents_links_due")
      expect(yield* runners.run("big", "search", () => Effect.void)).toBe(5)
      expect(yield* runners.run("big", "links", () => Effect.void)).toBe(5)
    }).pipe(Effect.provide(PgRunners.layer))
  )
})
