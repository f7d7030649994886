import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Layer, Option, Redacted, Ref, Schedule, Stream } from "effect"
import * as Checkpoint from "../src/checkpoint/Checkpoint.js"
import * as Database from "../src/db/Database.js"
import { DbSettings } from "../src/db/DbSettings.js"
import * as Migrations from "../src/db/Migrations.js"
import * as LeaseTimings from "../src/lock/LeaseTimings.js"
import * as DirSource from "../src/source/DirSource.js"
import { ItemProblem, type Listing, type Source } from "../src/source/Source.js"
import { initialProgress, type Progress } from "../src/sync/Progress.js"
import * as SyncProgram from "../src/sync/SyncProgram.js"
import * as Tidemark from "../src/Tidemark.js"
import * as Payer from "../src/maintenance/Payer.js"
import * as PgRunners from "../src/maintenance/PgRunners.js"
import * as Folder from "./support/folder.js"
import * as Sim from "./support/SimSource.js"
import * as TestDatabase from "./support/TestDatabase.js"

const syncLayers = (mainUrl: string, directUrl: string = mainUrl) =>
  Tidemark.servicesPg.pipe(
    Layer.provideMerge(Database.layer),
    Layer.provide(
      Layer.succeed(DbSettings, {
        databaseUrl: Option.some(Redacted.make(mainUrl)),
        directDatabaseUrl: Option.some(Redacted.make(directUrl)),
        home: "/unused",
        mainPoolSize: 4,
        directPoolSize: 3
      })
    )
  )

const runSync = (source: Source, flushPolicy?: Checkpoint.FlushPolicy, leaseTimings?: LeaseTimings.LeaseTimings) =>
  Effect.flatMap(Ref.make(initialProgress), (progress) =>
    SyncProgram.run({
      sourceId: source.root,
      source,
      concurrency: 2,
      dryRun: false,
      allowMassChange: false,
      progress,
      ...(flushPolicy === undefined ? {} : { flushPolicy }),
      ...(leaseTimings === undefined ? {} : { leaseTimings })
    })
  )

/** `source` with the items of its listings passed through `f`. */
const withListedItems = (source: Source, f: (items: Listing["items"]) => Listing["items"]): Source => ({
  ...source,
  plan: (target, watermark) =>
    Effect.map(source.plan(target, watermark), (listing) => ({ ...listing, items: f(listing.items) }))
})

/** Keeps the thread busy, as a synchronous listing over a cold file system does. */
const busy = (millis: number) => {
  const until = performance.now() + millis
  while (performance.now() < until) {
    // spin
  }
}

describe("SyncProgram in process", () => {
  it.live("stores the content actually read when a file changes between plan and read", () =>
    Effect.gen(function* () {
      const url = yield* TestDatabase.freshDatabase("sync_changing")
      const root = Folder.makeFolder(Folder.notes(50))
      const plain = yield* DirSource.make(root)
      const changing: Source = {
        ...plain,
        read: (items) =>
          Effect.zipRight(
            items.some((item) => item.key === "d7/note-7.md")
              ? Effect.sync(() => {
                  const file = path.join(root, "d7", "note-7.md")
                  fs.writeFileSync(file, "# Rewritten during the sync\n")
                  const later = new Date(Date.UTC(2025, 5, 1))
                  fs.utimesSync(file, later, later)
                })
              : Effect.void,
            plain.read(items)
          )
      }
      const layers = syncLayers(url)
      yield* Migrations.migrate().pipe(Effect.provide(layers))
      const first = yield* runSync(changing).pipe(Effect.provide(layers))
      expect(first).toMatchObject({ imported: 50, failed: 0 })
      const stored = yield* Effect.promise(() => Folder.storedDocuments(url, root))
      expect(stored["d7/note-7.md"]).toBe(Folder.sha256("# Rewritten during the sync\n"))
      expect(stored).toEqual(Folder.expectedDocuments(root))
      // The version stored is the one of the content read: nothing is left to do.
      const second = yield* runSync(plain).pipe(Effect.provide(layers))
      expect(second).toMatchObject({ read: 0, imported: 0 })
    }).pipe(Effect.scoped)
  )

  it.live("asks for no planned version while nothing is stored; a later sync compares each one", () =>
    Effect.gen(function* () {
      const url = yield* TestDatabase.freshDatabase("sync_lazy_versions")
      const root = Folder.makeFolder(Folder.notes(50))
      const plain: Source = yield* DirSource.make(root)
      let versionsAsked = 0
      const counting = withListedItems(plain, (items) =>
        Stream.map(items, (entry) =>
          entry instanceof ItemProblem
            ? entry
            : {
                key: entry.key,
                get version() {
                  versionsAsked++
                  return entry.version
                }
              }
        )
      )
      const layers = syncLayers(url)
      yield* Migrations.migrate().pipe(Effect.provide(layers))
      expect(yield* runSync(counting).pipe(Effect.provide(layers))).toMatchObject({ imported: 50, failed: 0 })
      expect(versionsAsked).toBe(0)
      const stored = yield* Effect.promise(() => Folder.storedDocuments(url, root))
      expect(stored).toEqual(Folder.expectedDocuments(root))
      expect(yield* runSync(counting).pipe(Effect.provide(layers))).toMatchObject({ read: 0, imported: 0 })
      expect(versionsAsked).toBe(50)
    }).pipe(Effect.scoped)
  )

  it.live("gets the source ready to read while it plans, once, and only when there is something to read", () =>
    Effect.gen(function* () {
      const url = yield* TestDatabase.freshDatabase("sync_prepare_read")
      const root = Folder.makeFolder(Folder.notes(1500))
      const plain = yield* DirSource.make(root)
      const events: Array<string> = []
      const progress = yield* Ref.make(initialProgress)
      const recording: Source = {
        ...plain,
        prepareRead: Effect.flatMap(Ref.get(progress), (p) =>
          Effect.zipRight(
            Effect.sync(() => events.push(`prepare while ${p.phase}`)),
            plain.prepareRead!
          )
        ),
        read: (items) =>
          Effect.zipRight(
            Effect.sync(() => events.push("read")),
            plain.read(items)
          )
      }
      const sync = (dryRun: boolean) =>
        SyncProgram.run({
          sourceId: root,
          source: recording,
          concurrency: 2,
          dryRun,
          allowMassChange: false,
          progress
        })
      const layers = syncLayers(url)
      yield* Migrations.migrate().pipe(Effect.provide(layers))
      expect(yield* sync(true).pipe(Effect.provide(layers))).toMatchObject({ imported: 1500 })
      expect(events).toEqual([])
      expect(yield* sync(false).pipe(Effect.provide(layers))).toMatchObject({ imported: 1500, failed: 0 })
      expect(events).toEqual(["prepare while planning", "read", "read", "read"])
      events.length = 0
      yield* Ref.set(progress, initialProgress)
      expect(yield* sync(false).pipe(Effect.provide(layers))).toMatchObject({ read: 0, imported: 0 })
      expect(events).toEqual([])
    }).pipe(Effect.scoped)
  )

  it.live(
    "a first import larger than its plan-ahead imports while the listing goes on; a smaller one plans in full",
    () =>
      Effect.gen(function* () {
        const url = yield* TestDatabase.freshDatabase("sync_streamed_first_import")
        const layers = syncLayers(url)
        yield* Migrations.migrate().pipe(Effect.provide(layers))
        // The listing stops after 2,500 items until a batch has been read: an import that waited
        // for the whole plan would wait for ever.
        const files = Sim.notes(4000)
        const firstRead = yield* Deferred.make<Progress>()
        const progress = yield* Ref.make(initialProgress)
        const sim = Sim.make("/sim/streamed", files, () =>
          Effect.flatMap(Ref.get(progress), (p) => Effect.asVoid(Deferred.succeed(firstRead, p)))
        )
        const keys = Object.keys(files).sort()
        const item = (key: string) => ({ key, version: Sim.hashOf(files[key]!).slice(0, 16) })
        const source: Source = {
          ...sim,
          plan: () =>
            Effect.succeed({
              _tag: "Complete",
              items: Stream.fromIterable(keys.slice(0, 2500).map(item)).pipe(
                Stream.concat(Stream.drain(Stream.fromEffect(Deferred.await(firstRead)))),
                Stream.concat(Stream.fromIterable(keys.slice(2500).map(item)))
              ),
              unlisted: Effect.succeed([])
            } satisfies Listing)
        }
        const sync = (planAhead: number) =>
          SyncProgram.run({ sourceId: source.root, source, concurrency: 2, progress, planAhead }).pipe(
            Effect.provide(layers)
          )
        const first = yield* sync(1000)
        expect(first).toMatchObject({ imported: 4000, failed: 0 })
        const atFirstRead = yield* Deferred.await(firstRead)
        expect(atFirstRead).toMatchObject({ phase: "importing", listing: true })
        expect(atFirstRead.toImport).toBeLessThan(4000)
        // Once the listing ended, the total is known again.
        expect(yield* Ref.get(progress)).toMatchObject({ listing: false, planned: 4000 })
        const [stored] = yield* Effect.promise(() =>
          Folder.query<{ n: string }>(url, "SELECT count(*) AS n FROM tidemark.documents WHERE source_id = $1", [
            source.root
          ])
        )
        expect(Number(stored!.n)).toBe(4000)

        // Within its plan-ahead, a first import knows its total before its first read.
        const small = Sim.make("/sim/planned", Sim.notes(1500), () =>
          Effect.flatMap(Ref.get(progress), (p) =>
            Effect.sync(() => expect(p).toMatchObject({ phase: "importing", listing: false, planned: 1500 }))
          )
        )
        yield* Ref.set(progress, initialProgress)
        expect(
          yield* SyncProgram.run({ sourceId: small.root, source: small, concurrency: 2, progress }).pipe(
            Effect.provide(layers)
          )
        ).toMatchObject({ imported: 1500, failed: 0 })
        expect(small.batchesRead()).toBe(3)
      }).pipe(Effect.scoped)
  )

  it.live(
    "its analyze debt refreshes the documents' statistics after a change of 1000 rows or more, not a small one",
    () =>
      Effect.gen(function* () {
        const url = yield* TestDatabase.freshDatabase("sync_statistics")
        const root = Folder.makeFolder(Folder.notes(1200))
        const layers = Layer.provideMerge(PgRunners.layer, syncLayers(url))
        yield* Migrations.migrate().pipe(Effect.provide(layers))
        // Only the payer may refresh them here.
        yield* Effect.promise(() =>
          Folder.query(url, "ALTER TABLE tidemark.documents SET (autovacuum_enabled = false)")
        )
        const estimatedRows = () =>
          Effect.promise(() =>
            Folder.query<{ reltuples: number }>(
              url,
              "SELECT reltuples FROM pg_class WHERE oid = 'tidemark.documents'::regclass"
            )
          ).pipe(Effect.map((rows) => rows[0]!.reltuples))
        const source = yield* DirSource.make(root)
        yield* Effect.gen(function* () {
          expect(yield* runSync(source)).toMatchObject({ imported: 1200 })
          // The sync itself leaves the statistics to its debt.
          expect(yield* estimatedRows()).toBeLessThan(1200)
          yield* Payer.payDue(root)
          expect(yield* estimatedRows()).toBe(1200)
          Folder.writeFiles(root, Folder.notes(100, "more"))
          expect(yield* runSync(source)).toMatchObject({ imported: 100 })
          yield* Payer.payDue(root)
          expect(yield* estimatedRows()).toBe(1200)
        }).pipe(Effect.provide(layers))
      }).pipe(Effect.scoped)
  )

  it.live("lets the event loop turn during a listing that never waits on anything (the lease's heartbeat runs)", () =>
    Effect.gen(function* () {
      const url = yield* TestDatabase.freshDatabase("sync_busy_listing")
      const root = Folder.makeFolder(Folder.notes(600))
      const plain: Source = yield* DirSource.make(root)
      // A timer set while the listing spins must fire before the listing ends: the
      // heartbeat's renewals are such timers. Between item 100 and item 500 the listing
      // spins at least 600 ms of wall time, more than the 50 ms after which it must yield.
      let listed = 0
      let fired = false
      let firedBy: number | undefined
      const busyListing = withListedItems(plain, (items) =>
        items.pipe(
          Stream.rechunk(40),
          Stream.map((entry) => {
            listed++
            if (listed === 100) setTimeout(() => (fired = true), 0)
            if (listed === 500) firedBy = fired ? listed : undefined
            busy(1.5)
            return entry
          })
        )
      )
      const layers = syncLayers(url)
      yield* Migrations.migrate().pipe(Effect.provide(layers))
      const summary = yield* runSync(busyListing).pipe(Effect.provide(layers))
      expect(summary).toMatchObject({ imported: 600, failed: 0 })
      expect(firedBy).toBe(500)
    }).pipe(Effect.scoped)
  )

  it.live("redoes banked items the sink does not hold (a batch a server crash took back)", () =>
    Effect.gen(function* () {
      const url = yield* TestDatabase.freshDatabase("sync_banked_lost")
      const root = Folder.makeFolder(Folder.notes(600))
      const plain: Source = yield* DirSource.make(root)
      // The first batch (500 files) is written and banked; the second is never read.
      const stalling: Source = { ...plain, read: (items) => (items.length < 500 ? Effect.never : plain.read(items)) }
      const layers = syncLayers(url)
      yield* Migrations.migrate().pipe(Effect.provide(layers))
      const banked = Effect.promise(() =>
        Folder.query<{ banked: string }>(url, "SELECT banked FROM tidemark.ops WHERE source_id = $1", [root])
      ).pipe(Effect.map((rows) => Number(rows[0]?.banked ?? 0)))
      const first = yield* Effect.fork(runSync(stalling).pipe(Effect.provide(layers)))
      yield* Effect.repeat(banked, { schedule: Schedule.spaced("50 millis"), until: (n) => n >= 500 })
      yield* Fiber.interrupt(first)
      // What an immediate restart does to the last batches, committed without waiting for the
      // WAL flush, after a checkpoint flush retried on the restarted server banked them.
      yield* Effect.promise(() =>
        Folder.query(
          url,
          `DELETE FROM tidemark.documents WHERE source_id = $1
              AND key IN (SELECT key FROM tidemark.documents WHERE source_id = $1 ORDER BY key LIMIT 10)`,
          [root]
        )
      )
      const resumed = yield* runSync(plain).pipe(Effect.provide(layers))
      expect(resumed).toMatchObject({ resumed: true, imported: 110, failed: 0 })
      const stored = yield* Effect.promise(() => Folder.storedDocuments(url, root))
      expect(stored).toEqual(Folder.expectedDocuments(root))
    }).pipe(Effect.scoped)
  )

  it.live("never follows a file swapped for a symlink out of the root between plan and read", () =>
    Effect.gen(function* () {
      const url = yield* TestDatabase.freshDatabase("sync_symlink_swap")
      const outside = Folder.makeFolder({ "secret.txt": "outside the root\n" })
      const root = Folder.makeFolder(Folder.notes(10))
      const plain = yield* DirSource.make(root)
      const swapping: Source = {
        ...plain,
        read: (items) =>
          Effect.zipRight(
            items.some((item) => item.key === "d3/note-3.md")
              ? Effect.sync(() => {
                  fs.rmSync(path.join(root, "d3", "note-3.md"))
                  fs.symlinkSync(path.join(outside, "secret.txt"), path.join(root, "d3", "note-3.md"))
                })
              : Effect.void,
            plain.read(items)
          )
      }
      const layers = syncLayers(url)
      yield* Migrations.migrate().pipe(Effect.provide(layers))
      const summary = yield* runSync(swapping).pipe(Effect.provide(layers))
      expect(summary).toMatchObject({ imported: 9, failed: 1 })
      const [error] = yield* Effect.promise(() =>
        Folder.query<{ error: string }>(url, "SELECT error FROM tidemark.item_errors WHERE key = 'd3/note-3.md'")
      )
      expect(error!.error).toContain("symlink")
      const [leaked] = yield* Effect.promise(() =>
        Folder.query<{ n: string }>(
          url,
          "SELECT count(*) AS n FROM tidemark.documents WHERE content LIKE '%outside the root%'"
        )
      )
      expect(Number(leaked!.n)).toBe(0)
    }).pipe(Effect.scoped)
  )

  it.live("stops with CheckpointUnavailable when the direct pool dies mid-sync, and imports nothing after", () =>
    Effect.gen(function* () {
      const url = yield* TestDatabase.freshDatabase("sync_direct_down")
      const database = new URL(url).pathname.slice(1)
      // Large enough that the import cannot finish before three flushes have failed.
      const root = Folder.makeFolder(Folder.notes(20000))
      const admin = (sql: string) => Effect.promise(() => Folder.query(url, sql))
      yield* admin(`DROP ROLE IF EXISTS tm_direct_${database}`)
      const role = `tm_direct_${database}`
      yield* admin(`CREATE ROLE ${role} LOGIN`)
      const main = syncLayers(url)
      yield* Migrations.migrate().pipe(Effect.provide(main))
      yield* admin(`GRANT USAGE ON SCHEMA tidemark TO ${role}`)
      yield* admin(`GRANT ALL ON ALL TABLES IN SCHEMA tidemark TO ${role}`)
      yield* admin(`GRANT ALL ON ALL SEQUENCES IN SCHEMA tidemark TO ${role}`)
      const directUrl = new URL(url)
      directUrl.username = role
      let reads = 0
      let readsAtCut = 0
      const plain = yield* DirSource.make(root)
      const cutting: Source = {
        ...plain,
        read: (items) => {
          const crossing = reads < 500 && reads + items.length >= 500
          reads += items.length
          return Effect.zipRight(
            crossing
              ? Effect.zipRight(
                  admin(`ALTER ROLE ${role} NOLOGIN`),
                  Effect.zipRight(
                    admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${role}'`),
                    Effect.sync(() => (readsAtCut = reads))
                  )
                )
              : Effect.void,
            plain.read(items)
          )
        }
      }
      const fastFailing: Checkpoint.FlushPolicy = {
        ...Checkpoint.defaultFlushPolicy,
        flushEvery: Duration.millis(200),
        flushAt: 100,
        retry: { base: "20 millis", cap: "50 millis", retries: 1 }
      }
      const error = yield* Effect.flip(
        runSync(cutting, fastFailing).pipe(Effect.provide(syncLayers(url, directUrl.toString())))
      )
      expect(error).toMatchObject({ _tag: "CheckpointUnavailable", failures: 3 })
      const written = yield* Effect.promise(() => Folder.storedDocuments(url, root))
      const count = Object.keys(written).length
      expect(readsAtCut).toBeGreaterThanOrEqual(500)
      expect(count).toBeGreaterThanOrEqual(400)
      expect(count).toBeLessThan(20000)
      // Every banked item was written; nothing was written that was not read before the stop.
      expect((error as Checkpoint.CheckpointUnavailable).banked).toBeLessThanOrEqual(count)
      expect(count).toBeLessThanOrEqual(reads)

      // With the direct pool back, a rerun finishes.
      yield* admin(`ALTER ROLE ${role} LOGIN`)
      const rest = yield* runSync(plain).pipe(Effect.provide(syncLayers(url, directUrl.toString())))
      expect(rest).toMatchObject({ resumed: true, imported: 20000 - count })
      expect(yield* Effect.promise(() => Folder.storedDocuments(url, root))).toEqual(Folder.expectedDocuments(root))
    }).pipe(Effect.scoped)
  )
})
