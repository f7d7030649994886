/**
 * What the documents sink stores besides the text: YAML frontmatter (in
 * Markdown files; any value type) and a title. A broken frontmatter block is
 * the item's problem, never a crash.
 *
 * The title (algorithm version 2, see `titleBackfill`): the frontmatter
 * `title` (a string, number or boolean), else in Markdown files the first
 * heading (ATX or setext) outside fenced code, else the file name. Version 1
 * also took `# ...` lines of any file (a shell comment became a script's
 * title), looked inside code blocks, and cut a trailing `#` off headings such
 * as `# C#`.
 */
import * as path from "node:path"
import { Either } from "effect"
import yaml from "js-yaml"
import { decodeUtf8 } from "../source/Source.js"
import { loadSimpleFrontmatter } from "./simpleFrontmatter.js"

export interface Parsed {
  readonly frontmatter: unknown
  readonly title: string
}

const isMarkdown = (key: string) => /\.(md|markdown|mdx)$/i.test(key)

const atxHeading = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/
const setextUnderline = /^ {0,3}(?:=+|-+)[ \t]*$/
const fence = /^ {0,3}(`{3,}|~{3,})/
/** Lines that cannot be the text of a setext heading. */
const notParagraph = /^ {0,3}(?:[-*+>]|\d+[.)]|#|`{3}|~{3})|^(?: {4}|\t)/

/** The first heading among a Markdown body's lines, outside fenced code blocks. */
const firstHeading = (lines: Iterable<string>): string | undefined => {
  let openFence: string | null = null
  let previous: string | null = null
  for (const line of lines) {
    if (openFence !== null) {
      const closing = fence.exec(line)
      if (closing !== null && closing[1]![0] === openFence[0] && closing[1]!.length >= openFence.length) {
        openFence = null
      }
      continue
    }
    const opening = fence.exec(line)
    if (opening !== null) {
      openFence = opening[1]!
      previous = null
      continue
    }
    const atx = atxHeading.exec(line)
    if (atx !== null && atx[1] !== undefined && atx[1].trim() !== "") return atx[1].trim()
    if (previous !== null && setextUnderline.test(line)) return previous.trim()
    previous = line.trim() !== "" && !notParagraph.test(line) ? line : null
  }
  return undefined
}

const newline = 0x0a
const carriageReturn = 0x0d
const space = 0x20
const tab = 0x09

/**
 * The lines of UTF-8 bytes from `start` (split at \n, a \r before it dropped, as
 * `split(/\r?\n/)` does), each decoded when it is reached: a heading near the top
 * is found without decoding the rest. A \n byte is never inside a character.
 */
function* linesOf(bytes: Uint8Array, start: number): Generator<string> {
  let at = start
  for (;;) {
    const end = bytes.indexOf(newline, at)
    const lineEnd = end === -1 ? bytes.length : end
    yield decodeUtf8(bytes.subarray(at, lineEnd > at && bytes[lineEnd - 1] === carriageReturn ? lineEnd - 1 : lineEnd))
    if (end === -1) return
    at = end + 1
  }
}

const startsWithAt = (bytes: Uint8Array, at: number, ascii: string) => {
  for (let i = 0; i < ascii.length; i++) if (bytes[at + i] !== ascii.charCodeAt(i)) return false
  return true
}

/** A Markdown text cut at its frontmatter: the block (null if none), whether --- opened one, the body's lines. */
interface Split {
  readonly block: string | null
  readonly opened: boolean
  readonly bodyLines: () => Iterable<string>
}

/**
 * Where the body starts if the line at `at` closes a frontmatter block (`---`
 * or `...`, then only spaces or tabs), else -1.
 */
const closingLineEnd = (bytes: Uint8Array, at: number) => {
  if (!startsWithAt(bytes, at, "---") && !startsWithAt(bytes, at, "...")) return -1
  let end = at + 3
  while (bytes[end] === space || bytes[end] === tab) end++
  if (end === bytes.length) return end
  if (bytes[end] === newline) return end + 1
  return bytes[end] === carriageReturn && bytes[end + 1] === newline ? end + 2 : -1
}

/**
 * A Markdown text cut at its frontmatter, found on its UTF-8 bytes: a block opens
 * with a `---` line and ends at the first closing line after it. Only the block
 * is decoded, and the body's lines one at a time as they are read.
 */
const cutAtFrontmatter = (bytes: Uint8Array): Split => {
  const blockStart = startsWithAt(bytes, 0, "---\n") ? 4 : startsWithAt(bytes, 0, "---\r\n") ? 5 : 0
  if (blockStart > 0) {
    for (let end = bytes.indexOf(newline, blockStart); end !== -1; end = bytes.indexOf(newline, end + 1)) {
      const bodyStart = closingLineEnd(bytes, end + 1)
      if (bodyStart === -1) continue
      const blockEnd = end > blockStart && bytes[end - 1] === carriageReturn ? end - 1 : end
      return {
        block: decodeUtf8(bytes.subarray(blockStart, blockEnd)),
        opened: true,
        bodyLines: () => linesOf(bytes, bodyStart)
      }
    }
  }
  return { block: null, opened: blockStart > 0, bodyLines: () => linesOf(bytes, 0) }
}

/** The frontmatter's `title` (a string, number or boolean), if it has a non-blank one. */
const frontmatterTitle = (frontmatter: unknown): string | undefined => {
  const title =
    typeof frontmatter === "object" && frontmatter !== null && "title" in frontmatter
      ? (frontmatter as { title: unknown }).title
      : undefined
  return (typeof title === "string" || typeof title === "number" || typeof title === "boolean") &&
    String(title).trim() !== ""
    ? String(title).trim()
    : undefined
}

/** The title of a document whose frontmatter and body's lines are given (the lines only read if needed). */
const titleFrom = (key: string, frontmatter: unknown, bodyLines: () => Iterable<string>): string =>
  frontmatterTitle(frontmatter) ??
  (isMarkdown(key) ? firstHeading(bodyLines()) : undefined) ??
  path.posix.basename(key).replace(/\.[^.]+$/, "")

/** The title of a document whose frontmatter and body (content after the frontmatter) are given. */
export const titleOf = (key: string, frontmatter: unknown, body: string): string =>
  titleFrom(key, frontmatter, () => linesOf(Buffer.from(body), 0))

const loadFrontmatter = (block: string): Either.Either<unknown, string> => {
  const simple = loadSimpleFrontmatter(block)
  if (simple !== undefined) return Either.right(simple)
  try {
    // The core schema: dates stay strings, nothing but plain data is constructed.
    return Either.right(yaml.load(block, { schema: yaml.CORE_SCHEMA }) ?? null)
  } catch (error) {
    return Either.left(`broken frontmatter: ${(error as Error).message.split("\n")[0]}`)
  }
}

/**
 * `content`: UTF-8 bytes (a string is encoded first). Only what the title and
 * frontmatter need is decoded (nothing for a file that is not Markdown: its
 * title is its name).
 */
export const parseDocument = (key: string, content: string | Uint8Array): Either.Either<Parsed, string> => {
  if (!isMarkdown(key)) return Either.right({ frontmatter: null, title: titleFrom(key, null, () => []) })
  const split = cutAtFrontmatter(typeof content === "string" ? Buffer.from(content) : content)
  if (split.block === null) {
    return split.opened
      ? Either.left("broken frontmatter: the block opened by --- is never closed")
      : Either.right({ frontmatter: null, title: titleFrom(key, null, split.bodyLines) })
  }
  return Either.map(loadFrontmatter(split.block), (frontmatter) => ({
    frontmatter,
    title: titleFrom(key, frontmatter, split.bodyLines)
  }))
}
