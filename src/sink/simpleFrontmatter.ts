/**
 * The commonest frontmatter, read without a YAML parser: lines of `key: word
 * words` or `key: [word, word]`. js-yaml builds a parser state per call,
 * several times the cost of the block itself (~0.3 s and ~230 MB of garbage
 * per 100,000 files). Anything else — quotes, numbers, dates, comments,
 * nesting, a repeated key, a word the core schema reads as null or a boolean —
 * is left to js-yaml, and this agrees with it on everything it accepts (tested
 * against it).
 */

/** A plain scalar that the core schema reads as a string: letters first, no indicator anywhere. */
const word = "[A-Za-z][A-Za-z0-9_.-]*"
const line = new RegExp(`^(${word}): +(${word}(?: +[A-Za-z0-9_.-]+)*|\\[(?:${word}(?:, *${word})*)?\\])$`)
const listItems = /[^[\], ]+/g

/** Words the core schema resolves to null or a boolean, as keys or as values. */
const notStrings = new Set(["null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE"])

/** The mapping in `block`, or undefined when the block is not of the simple kind. */
export const loadSimpleFrontmatter = (block: string): Record<string, unknown> | undefined => {
  const mapping: Record<string, unknown> = {}
  for (const text of block.split("\n")) {
    const match = line.exec(text)
    if (match === null) return undefined
    const [, key, value] = match as unknown as [string, string, string]
    if (notStrings.has(key) || Object.hasOwn(mapping, key)) return undefined
    const parsed = value.startsWith("[") ? (value.match(listItems) ?? []) : value
    if (Array.isArray(parsed) ? parsed.some((item) => notStrings.has(item)) : notStrings.has(parsed)) return undefined
    mapping[key] = parsed
  }
  return mapping
}
