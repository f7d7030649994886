/**
 * `COPY … FROM STDIN (FORMAT binary)` inside the current transaction: rows are
 * encoded straight into buffers (no text escaping, no array literals for the
 * server to parse) and sent in one go. For a first import this is the
 * cheapest way in on both sides; figures in BENCHMARKS.md.
 *
 * `@effect/sql` has no COPY, so the statement is handed to the node-postgres
 * client of the transaction's connection as a "submittable" (the extension
 * point that pg-cursor and pg-copy-streams use).
 */
import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import type { Connection as PgConnection, PoolClient } from "pg"

/** Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
const postgresEpochMicros = 946_684_800_000_000
/** Buffers added when the first one is full: one CopyData message each. */
const spillBytes = 1024 * 1024
/**
 * Each buffer starts with room for its CopyData message header (type byte,
 * length), so that it goes to the socket as it is: the driver's
 * `sendCopyFromChunk` would copy it into a new buffer first.
 */
const messageHeader = 5
const copyDataType = 0x64 // 'd'

/** Rows in PostgreSQL's binary COPY format, for the column types tidemark writes. */
export class BinaryRows {
  private readonly chunks: Array<Buffer> = []
  private buffer: Buffer
  private at = messageHeader

  /** `expectedBytes`: about what the rows will take (header and trailer are added here); allocated up front. */
  constructor(expectedBytes: number) {
    this.buffer = Buffer.allocUnsafe(Math.max(messageHeader + expectedBytes + 21, 64))
    this.at += this.buffer.write("PGCOPY\n\xff\r\n\0", this.at, "latin1")
    this.buffer.fill(0, this.at, this.at + 8) // flags, header extension length
    this.at += 8
  }

  private room(bytes: number) {
    if (this.at + bytes <= this.buffer.length) return
    this.chunks.push(this.buffer.subarray(0, this.at))
    this.buffer = Buffer.allocUnsafe(messageHeader + Math.max(spillBytes, bytes))
    this.at = messageHeader
  }

  /** Room for a string's UTF-8 bytes after a `prefix`: its exact length is only measured near the end of the buffer. */
  private roomForString(prefix: number, value: string) {
    const worst = prefix + value.length * 3
    this.room(this.at + worst <= this.buffer.length ? worst : prefix + Buffer.byteLength(value))
  }

  private null_() {
    this.room(4)
    this.at = this.buffer.writeInt32BE(-1, this.at)
  }

  /** Starts a row of `fields` values. */
  row(fields: number) {
    this.room(2)
    this.at = this.buffer.writeInt16BE(fields, this.at)
  }

  text(value: string | null) {
    if (value === null) return this.null_()
    this.roomForString(4, value)
    const length = this.buffer.write(value, this.at + 4, "utf8")
    this.buffer.writeInt32BE(length, this.at)
    this.at += 4 + length
  }

  int8(value: number | null) {
    if (value === null) return this.null_()
    this.int64(value)
  }

  timestamptz(value: Date | null) {
    if (value === null) return this.null_()
    this.int64(value.getTime() * 1000 - postgresEpochMicros)
  }

  /** An 8-byte integer field, from a safe integer (as two halves: a BigInt per value is garbage). */
  private int64(value: number) {
    this.room(12)
    const high = Math.floor(value / 2 ** 32)
    this.at = this.buffer.writeInt32BE(8, this.at)
    this.at = this.buffer.writeInt32BE(high, this.at)
    this.at = this.buffer.writeUInt32BE(value - high * 2 ** 32, this.at)
  }

  /** UTF-8 bytes as `text` (their validity is the caller's to check: the server checks again). */
  utf8(value: Uint8Array) {
    this.room(4 + value.byteLength)
    this.at = this.buffer.writeInt32BE(value.byteLength, this.at)
    this.buffer.set(value, this.at)
    this.at += value.byteLength
  }

  /** A JSON text as `jsonb` (its binary form is a version byte, then the text). */
  jsonb(json: string | null) {
    if (json === null) return this.null_()
    this.roomForString(5, json)
    const length = this.buffer.write(json, this.at + 5, "utf8")
    this.buffer.writeInt32BE(length + 1, this.at)
    this.buffer[this.at + 4] = 1
    this.at += 5 + length
  }

  /** JSON text already encoded as UTF-8 as `jsonb` (a version byte, then the bytes as they are). */
  jsonbUtf8(json: Uint8Array) {
    this.room(5 + json.byteLength)
    this.at = this.buffer.writeInt32BE(json.byteLength + 1, this.at)
    this.buffer[this.at++] = 1
    this.buffer.set(json, this.at)
    this.at += json.byteLength
  }

  /** The encoded stream, trailer included, as CopyData messages; the rows cannot be added to afterwards. */
  finish(): ReadonlyArray<Buffer> {
    this.room(2)
    this.at = this.buffer.writeInt16BE(-1, this.at)
    this.chunks.push(this.buffer.subarray(0, this.at))
    for (const message of this.chunks) {
      message[0] = copyDataType
      message.writeInt32BE(message.length - 1, 1)
    }
    return this.chunks
  }
}

/**
 * A COPY handed to node-postgres as a "submittable": the statement is sent, and
 * the outcome is settled once — at a server error (followed by ReadyForQuery),
 * a broken connection (not followed by it), or ReadyForQuery after the COPY.
 */
export abstract class CopySubmittable {
  private settled = false

  constructor(
    readonly text: string,
    private readonly done: (error: Error | undefined) => void
  ) {}

  protected settle(error: Error | undefined) {
    if (this.settled) return
    this.settled = true
    this.done(error)
  }

  submit(connection: PgConnection) {
    connection.query(this.text)
  }

  handleCommandComplete() {}

  handleError(error: Error) {
    this.settle(error)
  }

  handleReadyForQuery() {
    this.settle(undefined)
  }
}

/** The protocol side of one COPY FROM STDIN: the whole payload is sent once the server asks for it. */
class CopyFromStdin extends CopySubmittable {
  constructor(
    text: string,
    private readonly payload: ReadonlyArray<Buffer>,
    done: (error: Error | undefined) => void
  ) {
    super(text, done)
  }

  // Straight to the socket, as pg-copy-streams writes its messages; a broken connection
  // ends in handleError.
  handleCopyInResponse(connection: PgConnection & { readonly stream: NodeJS.WritableStream; endCopyFrom(): void }) {
    for (const message of this.payload) connection.stream.write(message)
    connection.endCopyFrom()
  }
}

/**
 * The node-postgres client of the enclosing transaction's connection. Outside
 * a transaction (or on another driver) it is a defect: a COPY would run on a
 * pool connection of its own, away from the transaction it belongs to.
 */
export const transactionClient: Effect.Effect<PoolClient> = Effect.flatMap(
  Effect.serviceOption(SqlClient.TransactionConnection),
  (transaction) => {
    const client = Option.flatMap(transaction, ([connection]) =>
      Option.fromNullable((connection as { readonly pg?: PoolClient }).pg)
    )
    return Option.isNone(client)
      ? Effect.dieMessage("COPY must run inside a transaction on an @effect/sql-pg connection")
      : Effect.succeed(client.value)
  }
)

/**
 * Runs `statement` (a `COPY … FROM STDIN (FORMAT binary)`) with `rows` on the
 * connection of the enclosing transaction. Outside a transaction it is a
 * defect: the copy would run on a pool connection of its own, away from the
 * fence that guards the write.
 */
export const copyIn = (statement: string, rows: BinaryRows): Effect.Effect<void, SqlError> =>
  Effect.flatMap(transactionClient, (pg) => {
    const payload = rows.finish()
    return Effect.async<void, SqlError>((resume) => {
      pg.query(
        new CopyFromStdin(statement, payload, (error) =>
          resume(
            error === undefined ? Effect.void : Effect.fail(new SqlError({ cause: error, message: "COPY failed" }))
          )
        )
      )
    })
  })
