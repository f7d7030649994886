/**
 * What makes an item text: every source imports text files only, and refuses
 * the rest with the same reasons.
 */
import { ItemProblem } from "./Source.js"

const utf8 = new TextDecoder("utf-8", { fatal: true })

export const tooLarge = (key: string, maxBytes: number, size: bigint | number) =>
  new ItemProblem({ key, reason: `larger than the ${Math.round(maxBytes / 1024 / 1024)} MiB limit (${size} bytes)` })

export const binaryReason = "binary file (contains NUL bytes)"
export const notUtf8Reason = "not valid UTF-8 text"

/** The bytes as a string, or the reason they are not text. */
export const decodeText = (key: string, bytes: Uint8Array): string | ItemProblem => {
  if (bytes.includes(0)) return new ItemProblem({ key, reason: binaryReason })
  try {
    return utf8.decode(bytes)
  } catch {
    return new ItemProblem({ key, reason: notUtf8Reason })
  }
}
