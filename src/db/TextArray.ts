/**
 * A `text[]` parameter in PostgreSQL's binary format (the driver sends a
 * Buffer parameter as binary). Building the text literal `{"a","b"}` escapes
 * every element into a new string (~45 MB of garbage for the checkpoint's
 * keys and versions per 100,000 files; a document's whole content each, when
 * documents are upserted), and the server then parses it back. Elements given
 * as UTF-8 bytes are copied as they are. Only for `$n::text[]` parameters: the
 * server checks the element type.
 */
const textOid = 25
/** Dimensions, has-nulls flag, element type, then size and lower bound of the one dimension. */
const headerBytes = 20

export type TextElement = string | Uint8Array | null

const byteLength = (value: TextElement) =>
  value === null ? 0 : typeof value === "string" ? Buffer.byteLength(value) : value.byteLength

export const textArray = (values: ReadonlyArray<TextElement>): Buffer => {
  if (values.length === 0) {
    const empty = Buffer.alloc(12)
    empty.writeInt32BE(textOid, 8)
    return empty
  }
  let bytes = headerBytes
  for (const value of values) bytes += 4 + byteLength(value)
  const buffer = Buffer.allocUnsafe(bytes)
  buffer.writeInt32BE(1, 0)
  buffer.writeInt32BE(values.includes(null) ? 1 : 0, 4)
  buffer.writeInt32BE(textOid, 8)
  buffer.writeInt32BE(values.length, 12)
  buffer.writeInt32BE(1, 16)
  let at = headerBytes
  for (const value of values) {
    const length =
      value === null
        ? -1
        : typeof value === "string"
          ? buffer.write(value, at + 4)
          : (buffer.set(value, at + 4), value.byteLength)
    buffer.writeInt32BE(length, at)
    at += 4 + Math.max(length, 0)
  }
  return buffer
}
