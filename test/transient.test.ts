import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Fiber, Logger, LogLevel, Ref, TestClock } from "effect"
import pg from "pg"
import { classify, connectRetryPolicy, transientRetrySchedule, retryTransient } from "../src/db/Transient.js"
import { adminUrl } from "./support/TestDatabase.js"

const pgError = (code: string, message = "boom") => Object.assign(new Error(message), { code })
const sqlError = (cause: unknown) => new SqlError({ cause, message: "Failed to execute statement" })
const errno = (code: string, syscall = "connect") => Object.assign(new Error(`${syscall} ${code}`), { code, syscall })

describe("classify", () => {
  const transient: ReadonlyArray<[string, unknown]> = [
    ["53300 too_many_connections", sqlError(pgError("53300"))],
    ["53400 configuration_limit_exceeded", sqlError(pgError("53400"))],
    ["57P01 admin_shutdown", sqlError(pgError("57P01"))],
    ["57P02 crash_shutdown", sqlError(pgError("57P02"))],
    ["57P03 cannot_connect_now", sqlError(pgError("57P03"))],
    ["08006 connection_failure", sqlError(pgError("08006"))],
    ["08001 unable to connect", sqlError(pgError("08001"))],
    ["08P01 protocol_violation (class 08)", sqlError(pgError("08P01"))],
    ["40001 serialization_failure", sqlError(pgError("40001"))],
    ["40P01 deadlock_detected", sqlError(pgError("40P01"))],
    ["ECONNREFUSED", sqlError(errno("ECONNREFUSED"))],
    ["ECONNRESET", sqlError(errno("ECONNRESET", "read"))],
    ["ETIMEDOUT", sqlError(errno("ETIMEDOUT"))],
    ["EPIPE", sqlError(errno("EPIPE", "write"))],
    ["missing Unix socket during a restart", sqlError(errno("ENOENT"))],
    ["closed connection", sqlError(new Error("Connection terminated unexpectedly"))],
    ["connection not queryable", sqlError(new Error("Client has encountered a connection error and is not queryable"))],
    ["pool acquire timeout", sqlError(new Error("timeout exceeded when trying to connect"))],
    ["PgBouncer session mode", sqlError(new Error("max clients in session mode reached (EMAXCONNSESSION)"))],
    ["PgBouncer max_client_conn", sqlError(new Error("no more connections allowed (max_client_conn)"))],
    [
      "reserved slots",
      sqlError(pgError("53300", "remaining connection slots are reserved for roles with the SUPERUSER attribute"))
    ],
    ["a failure at COMMIT arrives as a defect", Cause.die(sqlError(pgError("40001")))],
    ["a typed failure inside a Cause", Cause.fail(sqlError(pgError("57P01")))],
    ["AggregateError of connect attempts", sqlError(new AggregateError([errno("ECONNREFUSED")], "connect failed"))]
  ]
  const permanent: ReadonlyArray<[string, unknown]> = [
    ["23505 unique_violation", sqlError(pgError("23505"))],
    ["42601 syntax_error", sqlError(pgError("42601"))],
    ["42P01 undefined_table", sqlError(pgError("42P01"))],
    ["57014 statement timeout (deliberately not retried)", sqlError(pgError("57014"))],
    ["55P03 lock timeout (deliberately not retried)", sqlError(pgError("55P03"))],
    ["28P01 bad password", sqlError(pgError("28P01", "password authentication failed"))],
    ["3D000 no such database", sqlError(pgError("3D000"))],
    ["ENOENT on a file, not a socket", errno("ENOENT", "open")],
    ["a plain error", new Error("something else")],
    ["not an error at all", "nope"],
    ["a defect that is not a database error", Cause.die(new TypeError("x is undefined"))]
  ]
  it.each(transient)("%s is transient", (_, failure) => expect(classify(failure)).toBe("transient"))
  it.each(permanent)("%s is permanent", (_, failure) => expect(classify(failure)).toBe("permanent"))

  it("a refused connection to a real socket path that has no server is transient", async () => {
    const url = new URL(adminUrl())
    const client = new pg.Client({ host: "/nonexistent-tidemark-socket-dir", database: "x", user: url.username })
    const error = await client.connect().then(
      () => undefined,
      (e: unknown) => e
    )
    expect(error).toBeDefined()
    expect(classify(sqlError(error))).toBe("transient")
  })

  it("a real unique violation from the server is permanent", async () => {
    const client = new pg.Client({ connectionString: adminUrl() })
    await client.connect()
    try {
      await client.query("CREATE TEMP TABLE t (id int PRIMARY KEY)")
      await client.query("INSERT INTO t VALUES (1)")
      const error = await client.query("INSERT INTO t VALUES (1)").then(
        () => undefined,
        (e: unknown) => e
      )
      expect((error as { code?: string }).code).toBe("23505")
      expect(classify(sqlError(error))).toBe("permanent")
    } finally {
      await client.end()
    }
  })

  it("a real pool acquire timeout is transient", async () => {
    const pool = new pg.Pool({ connectionString: adminUrl(), max: 1, connectionTimeoutMillis: 100 })
    const held = await pool.connect()
    try {
      const error = await pool.query("SELECT 1").then(
        () => undefined,
        (e: unknown) => e
      )
      expect(String(error)).toContain("timeout")
      expect(classify(sqlError(error))).toBe("transient")
    } finally {
      held.release()
      await pool.end()
    }
  })
})

describe("retry schedule", () => {
  const failingWith = (failure: unknown, attempts: Ref.Ref<number>) =>
    Effect.flatMap(
      Ref.updateAndGet(attempts, (n) => n + 1),
      () => Effect.fail(failure)
    )

  it.effect("retries a transient failure with growing, capped delays, then gives up", () =>
    Effect.gen(function* () {
      const attempts = yield* Ref.make(0)
      const policy = { base: "1 second", cap: "5 seconds", retries: 6 } as const
      const fiber = yield* failingWith(sqlError(pgError("57P01")), attempts).pipe(
        retryTransient(policy),
        Effect.flip,
        Effect.fork
      )
      // Jitter keeps each delay within [0.8, 1.2] of 1, 2, 4, then the 5 s cap.
      const seen: Array<number> = []
      for (let step = 0; step < 120; step++) {
        yield* TestClock.adjust("250 millis")
        seen.push(yield* Ref.get(attempts))
      }
      const error = yield* Fiber.join(fiber)
      expect(error).toBeInstanceOf(SqlError)
      expect(yield* Ref.get(attempts)).toBe(7)
      // The second attempt comes after 0.8–1.2 s: not before 0.75 s, by 1.25 s.
      expect(seen[2]).toBe(1)
      expect(seen[4]).toBe(2)
      // Delays never exceed the cap: six retries finish within 1.2·(1+2+4) + 3·5 = 23.4 s.
      expect(seen.indexOf(7)).toBeGreaterThan(0)
      expect(seen.indexOf(7)).toBeLessThanOrEqual(Math.ceil(23.4 / 0.25))
    })
  )

  it.effect("does not retry a permanent failure", () =>
    Effect.gen(function* () {
      const attempts = yield* Ref.make(0)
      yield* failingWith(sqlError(pgError("23505")), attempts).pipe(retryTransient(), Effect.flip)
      expect(yield* Ref.get(attempts)).toBe(1)
    })
  )

  it.effect("stops retrying as soon as a failure turns permanent", () =>
    Effect.gen(function* () {
      const attempts = yield* Ref.make(0)
      const fiber = yield* Ref.updateAndGet(attempts, (n) => n + 1).pipe(
        Effect.flatMap((n) => Effect.fail(sqlError(pgError(n < 3 ? "08006" : "42601")))),
        retryTransient(),
        Effect.flip,
        Effect.fork
      )
      yield* TestClock.adjust(Duration.minutes(1))
      const error = yield* Fiber.join(fiber)
      expect(yield* Ref.get(attempts)).toBe(3)
      expect(classify(error)).toBe("permanent")
    })
  )

  it.effect("the default policy is bounded in time: no retry starts 30 s after the first failure", () =>
    Effect.gen(function* () {
      const attempts = yield* Ref.make(0)
      const fiber = yield* failingWith(sqlError(pgError("53300")), attempts).pipe(
        Effect.retry(transientRetrySchedule()),
        Effect.flip,
        Effect.fork
      )
      // Delays double from 0.2 s and are capped at 5 s: the last retry starts before 30 s + 5 s.
      yield* TestClock.adjust("35 seconds")
      const polled = yield* Fiber.poll(fiber)
      expect(polled._tag).toBe("Some")
      const n = yield* Ref.get(attempts)
      expect(n).toBeGreaterThanOrEqual(9)
      expect(n).toBeLessThanOrEqual(13)
    })
  )

  it.effect("a first connection gives up within ~10 s", () =>
    Effect.gen(function* () {
      const attempts = yield* Ref.make(0)
      const fiber = yield* failingWith(sqlError(pgError("08006")), attempts).pipe(
        retryTransient(connectRetryPolicy, "db.example:5432"),
        Effect.flip,
        Effect.fork
      )
      yield* TestClock.adjust("10 seconds")
      expect((yield* Fiber.poll(fiber))._tag).toBe("Some")
    })
  )

  it.effect("logs every retry, naming where: quietly during the first 2 s of an outage, then as a warning", () =>
    Effect.gen(function* () {
      const lines: Array<{ level: string; message: string }> = []
      const logger = Logger.make(({ logLevel, message }) => {
        lines.push({ level: logLevel.label, message: Array.isArray(message) ? message.join(" ") : String(message) })
      })
      const attempts = yield* Ref.make(0)
      const refused = Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:5432"), { code: "ECONNREFUSED" })
      const fiber = yield* failingWith(sqlError(refused), attempts).pipe(
        retryTransient(connectRetryPolicy, "10.0.0.1:5432 (main pool)"),
        Effect.flip,
        Effect.fork,
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.Debug)
      )
      yield* TestClock.adjust("15 seconds")
      yield* Fiber.join(fiber)
      expect(lines.length).toBe((yield* Ref.get(attempts)) - 1)
      for (const line of lines) {
        expect(line.message).toMatch(
          /^database unavailable at 10\.0\.0\.1:5432 \(main pool\): connect ECONNREFUSED 10\.0\.0\.1:5432; retrying in [\d.]+ (ms|s) \(attempt \d+\)$/
        )
      }
      expect(lines[0]).toMatchObject({ level: "DEBUG" })
      expect(lines[0]!.message).toContain("(attempt 2)")
      expect(lines.at(-1)).toMatchObject({ level: "WARN" })
    })
  )
})

describe("classify domain errors", () => {
  it("a tagged error is not transient because of words its message quotes", () => {
    const quoting = Object.assign(new Error("checkpoint unavailable: Connection terminated unexpectedly"), {
      _tag: "CheckpointUnavailable"
    })
    expect(classify(quoting)).toBe("permanent")
  })
  it("a tagged error wrapping a transient database error is transient", () => {
    const wrapping = Object.assign(new Error("migration 0002: failed"), {
      _tag: "MigrationError",
      cause: sqlError(pgError("57P01"))
    })
    expect(classify(wrapping)).toBe("transient")
  })
})
