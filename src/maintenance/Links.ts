/**
 * The links of a Markdown document: inline links to other documents
 * (`[text](other.md)`, `[text](../dir/note.md#part)`: relative to the document,
 * anchors and queries stripped, `%20`-escapes decoded; a leading `/` is the
 * source's root) and wiki links (`[[Note]]`, `[[Note|alias]]`,
 * `[[Note#Heading]]`, resolved later by path, file name or title). URLs with a
 * scheme, same-page anchors, images and embeds are not links to documents;
 * nothing inside code (fenced blocks, inline spans) is a link.
 */
import * as path from "node:path"

export interface Link {
  readonly kind: "markdown" | "wiki"
  /** As written. */
  readonly raw: string
  /** A Markdown link's path from the source's root; a wiki link's name. */
  readonly target: string
  readonly alias: string | null
}

const fenced = /^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm
const inlineCode = /`[^`\n]*`/g
const markdownLink = /(!?)\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g
const wikiLink = /(!?)\[\[([^\]|#\n]+)(?:#[^\]|\n]*)?(?:\|([^\]\n]*))?\]\]/g
const hasScheme = /^[a-z][a-z0-9+.-]*:/i

const blank = (text: string) => text.replace(/[^\n]/g, " ")

const decode = (text: string) => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** A Markdown link's target as a key, or undefined when it is not a link to a document of the source. */
const markdownTarget = (fromKey: string, href: string): string | undefined => {
  if (hasScheme.test(href) || href.startsWith("#") || href.startsWith("//")) return undefined
  const bare = decode(href.replace(/[?#].*$/, ""))
  if (bare === "") return undefined
  const joined = bare.startsWith("/") ? bare.slice(1) : path.posix.join(path.posix.dirname(fromKey), bare)
  const normal = path.posix.normalize(joined)
  return normal.startsWith("../") || normal === ".." || normal === "." ? undefined : normal
}

export const extractLinks = (fromKey: string, content: string): ReadonlyArray<Link> => {
  const text = content.replace(fenced, blank).replace(inlineCode, blank)
  const found: Array<{ at: number; link: Link }> = []
  for (const m of text.matchAll(markdownLink)) {
    if (m[1] === "!") continue
    const target = markdownTarget(fromKey, m[3]!)
    if (target !== undefined)
      found.push({ at: m.index, link: { kind: "markdown", raw: m[0], target, alias: m[2] || null } })
  }
  for (const m of text.matchAll(wikiLink)) {
    if (m[1] === "!") continue
    const target = m[2]!.trim()
    if (target === "") continue
    found.push({ at: m.index, link: { kind: "wiki", raw: m[0], target, alias: m[3]?.trim() || null } })
  }
  return found.sort((a, b) => a.at - b.at).map((f) => f.link)
}

/** The names a wiki link may use for a document: its file name without extension, and its title (lowercase). */
export const namesOf = (key: string, title: string | null): ReadonlyArray<string> => {
  const base = path.posix.basename(key)
  const names = new Set([base.toLowerCase(), base.replace(/\.[^.]+$/, "").toLowerCase()])
  if (title !== null && title.trim() !== "") names.add(title.trim().toLowerCase())
  return [...names]
}
