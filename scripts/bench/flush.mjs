#!/usr/bin/env node
// Checkpoint flush cost: a flush of 1000 newly banked items when the op has
// 0 items banked, vs 1,000,000 already banked; and, in the same run, the
// design tidemark replaces: rewriting the whole banked set on every flush.
//
//   node scripts/bench/flush.mjs [banked=1000000] [flushes=30]
import { Effect, Layer } from "effect"
import pg from "pg"
import { Database, Migrations } from "../../dist/index.js"
import { CheckpointStore } from "../../dist/checkpoint/CheckpointStore.js"
import * as PgCheckpointStore from "../../dist/checkpoint/PgCheckpointStore.js"
import { database, machine, median, settingsLayer } from "./lib.mjs"

const banked = Number(process.argv[2] ?? 1_000_000)
const flushes = Number(process.argv[3] ?? 30)
const db = await database()
const settings = settingsLayer(db.url)
const layers = PgCheckpointStore.layer.pipe(Layer.provideMerge(Database.layer), Layer.provide(settings))
const run = (effect) => Effect.runPromise(effect.pipe(Effect.provide(layers)))
await run(Migrations.migrate())

const client = new pg.Client({ connectionString: db.url })
await client.connect()
const newOp = async (name) => {
  await client.query(
    "INSERT INTO tidemark.sources (id, kind, root) VALUES ($1, 'dir', '/bench') ON CONFLICT DO NOTHING",
    [name]
  )
  const { rows } = await client.query(
    "INSERT INTO tidemark.ops (source_id, target, fencing_token) VALUES ($1, '{}', 1) RETURNING id",
    [name]
  )
  return Number(rows[0].id)
}
const delta = (prefix, i) =>
  Array.from({ length: 1000 }, (_, j) => ({ key: `${prefix}/new-${i}-${j}.md`, version: `v${i}` }))
const timeFlushes = (opId, prefix) =>
  run(
    Effect.gen(function* () {
      const store = yield* CheckpointStore
      const times = []
      for (let i = 0; i < flushes; i++) {
        const items = delta(prefix, i)
        const started = performance.now()
        yield* store.append(opId, items)
        times.push(performance.now() - started)
      }
      return median(times)
    })
  )

console.log(machine())
const empty = await newOp(`bench-empty-${Date.now()}`)
const full = await newOp(`bench-full-${Date.now()}`)
const filled = performance.now()
await client.query(
  "INSERT INTO tidemark.op_items (op_id, key, version) SELECT $1, 'old/' || g || '.md', 'v0' FROM generate_series(1, $2) g",
  [full, banked]
)
await client.query("UPDATE tidemark.ops SET banked = $2 WHERE id = $1", [full, banked])
await client.query("VACUUM ANALYZE tidemark.op_items")
console.log(`(filled ${banked} banked items in ${((performance.now() - filled) / 1000).toFixed(1)} s)`)

// Interleave the two series so that noise hits both.
const atZero = []
const atFull = []
for (let round = 0; round < 3; round++) {
  atZero.push(await timeFlushes(empty, `r${round}`))
  atFull.push(await timeFlushes(full, `r${round}`))
}
const zero = median(atZero)
const million = median(atFull)
console.log(`flush of 1000 items, 0 banked:         ${zero.toFixed(2)} ms (median of ${flushes * 3})`)
console.log(`flush of 1000 items, ${banked} banked: ${million.toFixed(2)} ms`)
console.log(`ratio: ${(million / zero).toFixed(2)}× (target ≤ 1.2×)`)

// Baseline: the whole banked set rewritten on each flush, as one JSON document.
await client.query("CREATE TABLE IF NOT EXISTS bench_banked_blob (op_id bigint PRIMARY KEY, items jsonb NOT NULL)")
const keys = Array.from({ length: banked }, (_, i) => `old/${i}.md`)
const rewrite = []
for (let i = 0; i < 3; i++) {
  keys.push(...delta("blob", i).map((d) => d.key))
  const started = performance.now()
  await client.query(
    "INSERT INTO bench_banked_blob VALUES (1, $1::jsonb) ON CONFLICT (op_id) DO UPDATE SET items = excluded.items",
    [JSON.stringify(keys)]
  )
  rewrite.push(performance.now() - started)
}
await client.query("DROP TABLE bench_banked_blob")
console.log(
  `baseline, whole set rewritten per flush at ${banked} banked: ${median(rewrite).toFixed(0)} ms (${(median(rewrite) / million).toFixed(0)}× tidemark's flush)`
)
await client.end()
await db.stop()
