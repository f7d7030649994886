/**
 * A folder or git source from what a person gave (`tidemark sync`'s flags, or
 * a recorded source's spec): tidemark's own exclusions always added, the
 * default selection when none is given.
 */
import * as DirSource from "../source/DirSource.js"
import * as GitSource from "../source/git/GitSource.js"
import * as JsonlFiles from "../source/jsonl/JsonlFiles.js"

export interface Selection {
  readonly include: ReadonlyArray<string>
  readonly exclude: ReadonlyArray<string>
  readonly maxBytes: number
}

export const folder = (root: string, selection: Selection) =>
  DirSource.make(root, {
    include: selection.include.length > 0 ? [...selection.include] : DirSource.defaultDirOptions.include,
    exclude: [...DirSource.defaultDirOptions.exclude, ...selection.exclude],
    maxBytes: selection.maxBytes
  })

export const repository = (root: string, ref: string | undefined, selection: Selection) =>
  GitSource.make(root, {
    ref: ref ?? GitSource.defaultGitOptions.ref,
    include: selection.include.length > 0 ? [...selection.include] : GitSource.defaultGitOptions.include,
    exclude: [...GitSource.defaultGitOptions.exclude, ...selection.exclude],
    maxBytes: selection.maxBytes
  })

export const jsonlSelection = (selection: Pick<Selection, "include" | "exclude">): JsonlFiles.FileSelection => ({
  include: [...selection.include],
  exclude: [...JsonlFiles.defaultSelection.exclude, ...selection.exclude]
})
