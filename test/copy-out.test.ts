import { describe, expect, it } from "vitest"
import { BinaryRowParser, literal } from "../src/db/CopyOut.js"

/** A binary COPY stream of text rows (null for NULL), as the server sends it. */
const stream = (rows: ReadonlyArray<ReadonlyArray<string | null>>) => {
  const parts: Array<Buffer> = [Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), Buffer.alloc(8)]
  for (const row of rows) {
    const count = Buffer.alloc(2)
    count.writeInt16BE(row.length)
    parts.push(count)
    for (const field of row) {
      const length = Buffer.alloc(4)
      const bytes = field === null ? Buffer.alloc(0) : Buffer.from(field, "utf8")
      length.writeInt32BE(field === null ? -1 : bytes.length)
      parts.push(length, bytes)
    }
  }
  parts.push(Buffer.from([0xff, 0xff]))
  return Buffer.concat(parts)
}

const rows: ReadonlyArray<ReadonlyArray<string | null>> = [
  ["a.md", "v1"],
  ["tab\there\nand a newline", null],
  ["日本語/ノート.md", "🌊"],
  ["", ""]
]

describe("binary COPY rows", () => {
  it("are the same however the stream is cut into messages", () => {
    const whole = stream(rows)
    for (let cut = 1; cut < whole.length; cut++) {
      const seen: Array<ReadonlyArray<string | null>> = []
      const parser = new BinaryRowParser((fields) => seen.push(fields))
      parser.feed(whole.subarray(0, cut))
      parser.feed(whole.subarray(cut))
      expect(seen).toEqual(rows)
      expect(parser.complete).toBe(true)
    }
    const oneByOne: Array<ReadonlyArray<string | null>> = []
    const parser = new BinaryRowParser((fields) => oneByOne.push(fields))
    for (let at = 0; at < whole.length; at++) parser.feed(whole.subarray(at, at + 1))
    expect(oneByOne).toEqual(rows)
  })

  it("say when the stream stops inside a row, and refuse what is not a binary COPY", () => {
    const whole = stream(rows)
    const parser = new BinaryRowParser(() => {})
    parser.feed(whole.subarray(0, whole.length - 5))
    expect(parser.complete).toBe(false)
    expect(() => new BinaryRowParser(() => {}).feed(Buffer.from("key\tversion\n".repeat(3)))).toThrow(/binary COPY/)
  })
})

describe("a literal in a statement", () => {
  it("doubles quotes and backslashes inside E'…'", () => {
    expect(literal("plain")).toBe("E'plain'")
    expect(literal("it's \\ here")).toBe("E'it''s \\\\ here'")
  })
})
