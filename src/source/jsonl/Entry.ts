/**
 * One line of a JSONL file, understood: valid JSON that PostgreSQL's `jsonb`
 * can store, its identity when `--id-field` names one, and whether it is a
 * message (it has the message field: `role`, else `message.role`, by
 * default) or metadata (cache markers, summaries, custom entries). Only
 * messages anchor a file's checkpoint. The raw bytes go to the database as
 * they are; the line's hash is of those bytes.
 */
import { isUtf8 } from "node:buffer"
import * as crypto from "node:crypto"
import { createHash } from "node:crypto"

export interface EntryFields {
  /** Dotted path of the entry's identity (`uuid`, `message.id`), if entries carry one. */
  readonly idField: ReadonlyArray<string> | null
  /** Dotted paths tried in order for the role; an entry with one is a message. */
  readonly messageFields: ReadonlyArray<ReadonlyArray<string>>
}

export const defaultEntryFields: EntryFields = { idField: null, messageFields: [["role"], ["message", "role"]] }

export const fieldPath = (dotted: string): ReadonlyArray<string> => dotted.split(".").filter((part) => part !== "")

export type Line =
  | {
      readonly _tag: "Entry"
      /** The `--id-field` value, when the entry has one. */
      readonly id: string | null
      readonly kind: "message" | "metadata"
      readonly role: string | null
      /** The JSON text for `jsonb` (a UTF-8 BOM at the start of a file removed). */
      readonly json: Uint8Array
    }
  | { readonly _tag: "Invalid"; readonly reason: string }

/** One-shot `crypto.hash` where Node has it (no Hash object per line; see BENCHMARKS.md, JSONL). */
const oneShot = (crypto as { readonly hash?: (algorithm: string, data: Uint8Array, encoding: "hex") => string }).hash

export const hashLine = (bytes: Uint8Array): string =>
  oneShot !== undefined ? oneShot("sha256", bytes, "hex") : createHash("sha256").update(bytes).digest("hex")

const at = (value: unknown, path: ReadonlyArray<string>): unknown => {
  let current = value
  for (const part of path) {
    if (typeof current !== "object" || current === null) return undefined
    current = (current as Record<string, unknown>)[part]
  }
  return current
}

const bom = [0xef, 0xbb, 0xbf]
const withoutBom = (bytes: Uint8Array) =>
  bytes[0] === bom[0] && bytes[1] === bom[1] && bytes[2] === bom[2] ? bytes.subarray(3) : bytes

/** `\u0000` and unpaired surrogates are valid JSON but rejected by `jsonb`: found before the whole batch is refused. */
const jsonbUnstorable = (text: string): string | undefined => {
  if (!text.includes("\\u") && !text.includes("\\U")) return undefined
  const escapes = /\\u([0-9a-fA-F]{4})/g
  let previousHigh = -1
  let previousEnd = -1
  for (let match = escapes.exec(text); match !== null; match = escapes.exec(text)) {
    // An escaped backslash before it makes it text, not an escape.
    let backslashes = 0
    for (let i = match.index - 1; i >= 0 && text[i] === "\\"; i--) backslashes++
    if (backslashes % 2 === 1) continue
    const code = Number.parseInt(match[1]!, 16)
    if (code === 0) return "contains \\u0000, which PostgreSQL cannot store in jsonb"
    const isHigh = code >= 0xd800 && code <= 0xdbff
    const isLow = code >= 0xdc00 && code <= 0xdfff
    if (isLow && !(previousHigh >= 0 && previousEnd === match.index)) return "contains an unpaired \\u surrogate"
    if (previousHigh >= 0 && previousEnd !== match.index) return "contains an unpaired \\u surrogate"
    previousHigh = isHigh ? code : -1
    previousEnd = match.index + 6
  }
  return previousHigh >= 0 ? "contains an unpaired \\u surrogate" : undefined
}

export const parseLine = (raw: Uint8Array, fields: EntryFields): Line => {
  const bytes = withoutBom(raw)
  if (!isUtf8(bytes)) return { _tag: "Invalid", reason: "not valid UTF-8" }
  const text = Buffer.isBuffer(bytes)
    ? bytes.toString("utf8")
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return { _tag: "Invalid", reason: `not valid JSON (${(error as Error).message})` }
  }
  const unstorable = jsonbUnstorable(text)
  if (unstorable !== undefined) return { _tag: "Invalid", reason: unstorable }
  let role: string | null = null
  for (const path of fields.messageFields) {
    const found = at(value, path)
    if (found !== undefined && found !== null) {
      role = typeof found === "string" ? found : JSON.stringify(found)
      break
    }
  }
  const id = fields.idField === null ? undefined : at(value, fields.idField)
  return {
    _tag: "Entry",
    id: typeof id === "string" || typeof id === "number" || typeof id === "bigint" ? String(id) : null,
    kind: role === null ? "metadata" : "message",
    role,
    json: bytes
  }
}
