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

export interface Parsed {
  readonly frontmatter: unknown
  readonly title: string
}

const frontmatterBlock = /^---\r?\n([\s\S]*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|$)/

const isMarkdown = (key: string) => /\.(md|markdown|mdx)$/i.test(key)

const atxHeading = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/
const setextUnderline = /^ {0,3}(?:=+|-+)[ \t]*$/
const fence = /^ {0,3}(`{3,}|~{3,})/
/** Lines that cannot be the text of a setext heading. */
const notParagraph = /^ {0,3}(?:[-*+>]|\d+[.)]|#|`{3}|~{3})|^(?: {4}|\t)/

/** The first heading of a Markdown body, outside fenced code blocks. */
const firstHeading = (body: string): string | undefined => {
  let openFence: string | null = null
  let previous: string | null = null
  for (const line of body.split(/\r?\n/)) {
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

/** The title of a document whose frontmatter and body (content after the frontmatter) are given. */
export const titleOf = (key: string, frontmatter: unknown, body: string): string => {
  const fromFrontmatter =
    typeof frontmatter === "object" && frontmatter !== null && "title" in frontmatter
      ? (frontmatter as { title: unknown }).title
      : undefined
  if (
    (typeof fromFrontmatter === "string" ||
      typeof fromFrontmatter === "number" ||
      typeof fromFrontmatter === "boolean") &&
    String(fromFrontmatter).trim() !== ""
  ) {
    return String(fromFrontmatter).trim()
  }
  return (isMarkdown(key) ? firstHeading(body) : undefined) ?? path.posix.basename(key).replace(/\.[^.]+$/, "")
}

/** `content`: a string, or UTF-8 bytes (only decoded for a Markdown file: the others' titles are their names). */
export const parseDocument = (key: string, content: string | Uint8Array): Either.Either<Parsed, string> => {
  if (!isMarkdown(key)) return Either.right({ frontmatter: null, title: titleOf(key, null, "") })
  const text = typeof content === "string" ? content : decodeUtf8(content)
  let frontmatter: unknown = null
  let body = text
  const block = frontmatterBlock.exec(text)
  if (block !== null) {
    try {
      // The core schema: dates stay strings, nothing but plain data is constructed.
      frontmatter = yaml.load(block[1]!, { schema: yaml.CORE_SCHEMA }) ?? null
    } catch (error) {
      return Either.left(`broken frontmatter: ${(error as Error).message.split("\n")[0]}`)
    }
    body = text.slice(block[0].length)
  } else if (/^---\r?\n/.test(text)) {
    return Either.left("broken frontmatter: the block opened by --- is never closed")
  }
  return Either.right({ frontmatter, title: titleOf(key, frontmatter, body) })
}
