/**
 * What the documents sink stores besides the text: YAML frontmatter (in
 * Markdown files; any value type) and a title (frontmatter `title`, else the
 * first heading, else the file name). A broken frontmatter block is the
 * item's problem, never a crash.
 */
import * as path from "node:path"
import { Either } from "effect"
import yaml from "js-yaml"

export interface Parsed {
  readonly frontmatter: unknown
  readonly title: string
}

const frontmatterBlock = /^---\r?\n([\s\S]*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|$)/
const heading = /^#{1,6}[ \t]+(.+?)[ \t#]*$/m

const isMarkdown = (key: string) => /\.(md|markdown|mdx)$/i.test(key)

export const parseDocument = (key: string, content: string): Either.Either<Parsed, string> => {
  let frontmatter: unknown = null
  let body = content
  if (isMarkdown(key)) {
    const block = frontmatterBlock.exec(content)
    if (block !== null) {
      try {
        // The core schema: dates stay strings, nothing but plain data is constructed.
        frontmatter = yaml.load(block[1]!, { schema: yaml.CORE_SCHEMA }) ?? null
      } catch (error) {
        return Either.left(`broken frontmatter: ${(error as Error).message.split("\n")[0]}`)
      }
      body = content.slice(block[0].length)
    } else if (/^---\r?\n/.test(content)) {
      return Either.left("broken frontmatter: the block opened by --- is never closed")
    }
  }
  const fromFrontmatter =
    typeof frontmatter === "object" && frontmatter !== null && "title" in frontmatter
      ? (frontmatter as { title: unknown }).title
      : undefined
  const title =
    typeof fromFrontmatter === "string" && fromFrontmatter.trim() !== ""
      ? fromFrontmatter.trim()
      : (heading.exec(body)?.[1]?.trim() ?? path.posix.basename(key).replace(/\.[^.]+$/, ""))
  return Either.right({ frontmatter, title })
}
