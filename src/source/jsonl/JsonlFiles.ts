/**
 * The JSONL files of a source: every `*.jsonl` under its root (or the root
 * itself, when it is a file), with the names logrotate gives a rotated file
 * (`app.jsonl.1`, `app.jsonl-20261201`) but not compressed ones; or what
 * `--include`/`--exclude` say. Symlinks are not followed. A folder that cannot
 * be read is a problem of its own, and nothing under it counts as gone.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { defaultExclude, matcher } from "../globs.js"
import { ItemProblem } from "../Source.js"

export interface ListedFile {
  /** Path from the root, `/`-separated (the file's name when the root is the file). */
  readonly key: string
  readonly absolute: string
  readonly size: number
  readonly mtimeUs: number
  readonly device: number
  readonly inode: number
}

export interface Listing {
  readonly files: ReadonlyArray<ListedFile>
  readonly problems: ReadonlyArray<ItemProblem>
  /** Key prefixes the listing could not see into. */
  readonly unlisted: ReadonlyArray<string>
}

export interface FileSelection {
  /** Globs over keys; none: the JSONL names below. */
  readonly include: ReadonlyArray<string>
  readonly exclude: ReadonlyArray<string>
}

const compressed = /\.(gz|bz2|xz|zst|lz4|zip|7z)$/
/** `x.jsonl`, and the names of its rotations: `x.jsonl.1`, `x.jsonl-20261201`. */
export const isJsonlName = (name: string) => /\.jsonl(\.\d+|-[^/]+)?$/.test(name) && !compressed.test(name)

export const defaultSelection: FileSelection = { include: [], exclude: [...defaultExclude, ".git/**", "**/.git/**"] }

const errorText = (cause: NodeJS.ErrnoException) =>
  cause.code === "EACCES" || cause.code === "EPERM" ? "permission denied" : (cause.message ?? String(cause))

const statOf = (absolute: string, key: string): ListedFile => {
  const stat = fs.lstatSync(absolute, { bigint: true })
  return {
    key,
    absolute,
    size: Number(stat.size),
    mtimeUs: Number(stat.mtimeNs / 1000n),
    device: Number(stat.dev),
    inode: Number(stat.ino)
  }
}

/** Lists the files now (synchronous: a few microseconds a file). */
export const list = (root: string, selection: FileSelection = defaultSelection): Listing => {
  const included =
    selection.include.length === 0 ? (key: string) => isJsonlName(path.posix.basename(key)) : matcher(selection.include)
  const excluded = matcher(selection.exclude)
  const files: Array<ListedFile> = []
  const problems: Array<ItemProblem> = []
  const unlisted: Array<string> = []
  let rootStat: fs.Stats
  try {
    rootStat = fs.statSync(root)
  } catch (cause) {
    return {
      files,
      problems: [new ItemProblem({ key: ".", reason: errorText(cause as NodeJS.ErrnoException) })],
      unlisted: [""]
    }
  }
  if (rootStat.isFile()) {
    return { files: [statOf(root, path.basename(root))], problems, unlisted }
  }
  const walk = (dir: string, prefix: string) => {
    let entries: Array<fs.Dirent>
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch (cause) {
      unlisted.push(prefix)
      problems.push(
        new ItemProblem({
          key: prefix === "" ? "." : prefix,
          reason: `folder not readable: ${errorText(cause as NodeJS.ErrnoException)}`
        })
      )
      return
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : 1))
    for (const entry of entries) {
      const key = `${prefix}${entry.name}`
      if (entry.isDirectory()) {
        if (!excluded(`${key}/`) && !excluded(key)) walk(path.join(dir, entry.name), `${key}/`)
      } else if (entry.isFile() && included(key) && !excluded(key)) {
        try {
          files.push(statOf(path.join(dir, entry.name), key))
        } catch (cause) {
          problems.push(new ItemProblem({ key, reason: errorText(cause as NodeJS.ErrnoException) }))
        }
      }
    }
  }
  walk(root, "")
  return { files, problems, unlisted }
}
