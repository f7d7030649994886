/**
 * `COPY (SELECT …) TO STDOUT (FORMAT binary)` inside the current transaction:
 * a whole result in one streamed read, each row handed over as it arrives.
 * A cursor (what `@effect/sql` streams with) asks for 128 rows per round
 * trip and a plain query holds the whole result in the driver; this does
 * neither. Text fields only: the caller selects text columns.
 *
 * COPY takes no bind parameters: values go into the statement as literals
 * (`literal`), which are safe for any text.
 */
import { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { CopySubmittable, transactionClient } from "./Copy.js"

/** Signature, flags and header extension length of a binary COPY stream. */
const headerBytes = 19
const signature = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1")

/**
 * `value` as a string literal. The `E'…'` form means the same whatever
 * `standard_conforming_strings` says: backslashes and quotes are doubled.
 */
export const literal = (value: string): string => `E'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`

/**
 * The rows of a binary COPY stream, however its messages split them (the
 * server sends one row per message, but the protocol does not promise it).
 */
export class BinaryRowParser {
  private pending: Buffer | null = null
  private headerSeen = false
  private ended = false

  constructor(private readonly onRow: (fields: ReadonlyArray<string | null>) => void) {}

  feed(chunk: Buffer) {
    const data = this.pending === null ? chunk : Buffer.concat([this.pending, chunk])
    let at = 0
    if (!this.headerSeen) {
      if (data.length < headerBytes) return void (this.pending = data)
      if (!data.subarray(0, signature.length).equals(signature)) throw new Error("not a binary COPY stream")
      at = headerBytes + data.readUInt32BE(15)
      this.headerSeen = true
    }
    while (!this.ended && data.length - at >= 2) {
      const start = at
      const count = data.readInt16BE(at)
      at += 2
      if (count === -1) {
        this.ended = true
        break
      }
      const fields: Array<string | null> = []
      for (let i = 0; i < count && at <= data.length; i++) {
        if (data.length - at < 4) {
          at = data.length + 1
          break
        }
        const length = data.readInt32BE(at)
        at += 4
        if (length === -1) fields.push(null)
        else if (data.length - at < length) at = data.length + 1
        else {
          fields.push(data.toString("utf8", at, at + length))
          at += length
        }
      }
      if (at > data.length) {
        // The row goes on in the next message.
        at = start
        break
      }
      this.onRow(fields)
    }
    this.pending = at < data.length && !this.ended ? data.subarray(at) : null
  }

  /** Whether the stream ended where it should (its trailer, nothing after a partial row). */
  get complete() {
    return this.ended || (this.headerSeen && this.pending === null)
  }
}

/** The protocol side of one COPY TO STDOUT: each message's rows parsed as it arrives. */
class CopyToStdout extends CopySubmittable {
  private failure: Error | undefined = undefined
  private readonly parser: BinaryRowParser

  constructor(
    text: string,
    onRow: (fields: ReadonlyArray<string | null>) => void,
    done: (error: Error | undefined) => void
  ) {
    super(text, done)
    this.parser = new BinaryRowParser(onRow)
  }
  handleCopyData(message: { readonly chunk: Buffer }) {
    if (this.failure !== undefined) return
    try {
      this.parser.feed(message.chunk)
    } catch (error) {
      // Reported once the server is ready again: the connection stays usable.
      this.failure = error instanceof Error ? error : new Error(String(error))
    }
  }
  override handleCommandComplete() {
    if (this.failure === undefined && !this.parser.complete) this.failure = new Error("COPY ended inside a row")
  }
  override handleReadyForQuery() {
    this.settle(this.failure)
  }
}

/**
 * Runs `statement` (a `COPY (SELECT …) TO STDOUT (FORMAT binary)` of text
 * columns) on the connection of the enclosing transaction, calling `onRow`
 * with each row's fields as they arrive; returns the number of rows.
 */
export const copyOut = (
  statement: string,
  onRow: (fields: ReadonlyArray<string | null>) => void
): Effect.Effect<number, SqlError> =>
  Effect.flatMap(transactionClient, (pg) =>
    Effect.async<number, SqlError>((resume) => {
      let rows = 0
      pg.query(
        new CopyToStdout(
          statement,
          (fields) => {
            rows++
            onRow(fields)
          },
          (error) =>
            resume(
              error === undefined
                ? Effect.succeed(rows)
                : Effect.fail(new SqlError({ cause: error, message: "COPY failed" }))
            )
        )
      )
    })
  )
