/**
 * What makes an item text: every source imports text files only, and refuses
 * the rest with the same reasons.
 */
import { isUtf8 } from "node:buffer"
import { ItemProblem } from "./Source.js"

export const tooLarge = (key: string, maxBytes: number, size: bigint | number) =>
  new ItemProblem({ key, reason: `larger than the ${Math.round(maxBytes / 1024 / 1024)} MiB limit (${size} bytes)` })

export const binaryReason = "binary file (contains NUL bytes)"
export const notUtf8Reason = "not valid UTF-8 text"

/** Why the bytes are not text, if they are not. */
export const notText = (key: string, bytes: Uint8Array): ItemProblem | undefined =>
  bytes.includes(0)
    ? new ItemProblem({ key, reason: binaryReason })
    : isUtf8(bytes)
      ? undefined
      : new ItemProblem({ key, reason: notUtf8Reason })
