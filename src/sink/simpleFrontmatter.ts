/**
 * The commonest frontmatter, read without a YAML parser: lines of `key: word
 * words` or `key: [word, word]`. js-yaml builds a parser state per call,
 * several times the cost of the block itself (~0.3 s and ~230 MB of garbage
 * per 100,000 files). Anything else — quotes, numbers, dates, comments,
 * nesting, a repeated key, a word the core schema reads as null or a boolean —
 * is left to js-yaml, and this agrees with it on everything it accepts (tested
 * against it).
 *
 * The lines are scanned in place: a regular expression per line, its match
 * and the split into lines came to ~70 MB of garbage per 100,000 files.
 *
 *   line  = word ":" " "+ (words | list)
 *   words = word (" "+ [A-Za-z0-9_.-]+)*
 *   list  = "[" (word ("," " "* word)*)? "]"
 *   word  = [A-Za-z] [A-Za-z0-9_.-]*       (a plain scalar the core schema reads as a string)
 */

const space = 0x20
const colon = 0x3a
const comma = 0x2c
const openBracket = 0x5b
const closeBracket = 0x5d

const isLetter = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
const isWordChar = (c: number) => isLetter(c) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2e || c === 0x2d

/** Words the core schema resolves to null or a boolean, as keys or as values. */
const notStrings = new Set(["null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE"])

/** Where the word at `at` ends (before `end`), or -1 if none starts there. */
const wordEnd = (text: string, at: number, end: number) => {
  if (at >= end || !isLetter(text.charCodeAt(at))) return -1
  let i = at + 1
  while (i < end && isWordChar(text.charCodeAt(i))) i++
  return i
}

/** Whether `text` from `at` to `end` is a word, then runs of word characters after spaces. */
const isWords = (text: string, at: number, end: number) => {
  let i = wordEnd(text, at, end)
  if (i === -1) return false
  while (i < end) {
    if (text.charCodeAt(i) !== space) return false
    while (i < end && text.charCodeAt(i) === space) i++
    const run = i
    while (i < end && isWordChar(text.charCodeAt(i))) i++
    if (i === run) return false
  }
  return true
}

/** The words of the list that opens at `at` and must close at `end`, or undefined. */
const listWords = (text: string, at: number, end: number): Array<string> | undefined => {
  const words: Array<string> = []
  let i = at + 1
  if (i < end && text.charCodeAt(i) === closeBracket) return i + 1 === end ? words : undefined
  for (;;) {
    const after = wordEnd(text, i, end)
    if (after === -1) return undefined
    words.push(text.slice(i, after))
    if (after < end && text.charCodeAt(after) === closeBracket) return after + 1 === end ? words : undefined
    if (after >= end || text.charCodeAt(after) !== comma) return undefined
    i = after + 1
    while (i < end && text.charCodeAt(i) === space) i++
  }
}

/** The mapping in `block`, or undefined when the block is not of the simple kind. */
export const loadSimpleFrontmatter = (block: string): Record<string, unknown> | undefined => {
  const mapping: Record<string, unknown> = {}
  let start = 0
  for (;;) {
    const newlineAt = block.indexOf("\n", start)
    const end = newlineAt === -1 ? block.length : newlineAt
    const keyEnd = wordEnd(block, start, end)
    if (keyEnd === -1 || keyEnd + 1 >= end) return undefined
    if (block.charCodeAt(keyEnd) !== colon || block.charCodeAt(keyEnd + 1) !== space) return undefined
    const key = block.slice(start, keyEnd)
    if (notStrings.has(key) || Object.hasOwn(mapping, key)) return undefined
    let valueStart = keyEnd + 2
    while (valueStart < end && block.charCodeAt(valueStart) === space) valueStart++
    if (valueStart < end && block.charCodeAt(valueStart) === openBracket) {
      const words = listWords(block, valueStart, end)
      if (words === undefined || words.some((word) => notStrings.has(word))) return undefined
      mapping[key] = words
    } else {
      if (!isWords(block, valueStart, end)) return undefined
      const value = block.slice(valueStart, end)
      if (notStrings.has(value)) return undefined
      mapping[key] = value
    }
    if (newlineAt === -1) return mapping
    start = newlineAt + 1
  }
}
