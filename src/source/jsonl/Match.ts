/**
 * Which stored stream each listed file is. A path alone cannot say (a file
 * rotated away and a new one under its name; a copy truncated in place), nor
 * can a first line (files that share a header), so a stream is recognised by
 * what it provably still holds: its first line and its anchor, byte for byte
 * (`continues`). In order:
 *
 *   1. same path, size and mtime as stored: unchanged, nothing read;
 *   2. same path, and the stream goes on in it: its tail;
 *   3. another path, and the stream goes on in it (renamed, rotated — the
 *      same device and inode preferred among copies): its tail there;
 *   4. the stream's own path, and the stream went on nowhere else: the same
 *      file rewritten (compacted, truncated, replaced): a reconcile;
 *   5. anything else is a new stream (a new file, or a new file under the
 *      name of a rotated one).
 *
 * Streams matched by nothing are gone, unless they lie under a folder the
 * listing could not read. The decision is pure: reading first lines and
 * anchors is the caller's (`continues` is given as data).
 */
import type { Stream } from "../../entries/EntriesStore.js"
import type { ListedFile } from "./JsonlFiles.js"

export type FileAction =
  | { readonly _tag: "Unchanged"; readonly file: ListedFile; readonly stream: Stream }
  | { readonly _tag: "Tail"; readonly file: ListedFile; readonly stream: Stream; readonly movedFrom?: string }
  | { readonly _tag: "Reconcile"; readonly file: ListedFile; readonly stream: Stream }
  | { readonly _tag: "New"; readonly file: ListedFile }

export interface Matched {
  readonly actions: ReadonlyArray<FileAction>
  /** Streams whose file is no longer listed (and was not gone already). */
  readonly gone: ReadonlyArray<Stream>
}

/** Unchanged since the last sync, as far as size and mtime tell (and nothing was left to do in it). */
export const isUnchanged = (file: ListedFile, stream: Stream) =>
  stream.path === file.key &&
  !stream.gone &&
  stream.size === file.size &&
  stream.mtimeUs === file.mtimeUs &&
  !stream.racy &&
  stream.backlog === 0

export const match = (
  files: ReadonlyArray<ListedFile>,
  streams: ReadonlyArray<Stream>,
  /** Whether `stream` goes on in `file` (first line and anchor still there); asked only for files not unchanged. */
  goesOn: (file: ListedFile, stream: Stream) => boolean,
  unlisted: ReadonlyArray<string>
): Matched => {
  const actions: Array<FileAction> = []
  const taken = new Set<number>()
  const placed = new Set<string>()
  const byPath = new Map<string, Stream>()
  for (const stream of streams) {
    // The newest stream seen at a path is the one that lives there.
    const seen = byPath.get(stream.path)
    if (seen === undefined || seen.gone || (!stream.gone && stream.stream > seen.stream))
      byPath.set(stream.path, stream)
  }
  const place = (action: FileAction) => {
    actions.push(action)
    placed.add(action.file.key)
    if (action._tag !== "New") taken.add(action.stream.stream)
  }
  // A stream with a backlog goes on by reconciling, whatever the anchor says.
  const tailOrReconcile = (file: ListedFile, stream: Stream, movedFrom?: string): FileAction =>
    stream.backlog > 0
      ? { _tag: "Reconcile", file, stream }
      : { _tag: "Tail", file, stream, ...(movedFrom === undefined ? {} : { movedFrom }) }

  // 1 and 2: at their own path.
  for (const file of files) {
    const stream = byPath.get(file.key)
    if (stream === undefined || taken.has(stream.stream)) continue
    if (isUnchanged(file, stream)) place({ _tag: "Unchanged", file, stream })
    else if (goesOn(file, stream)) place(tailOrReconcile(file, stream))
  }
  // 3: moved.
  for (const stream of streams) {
    if (taken.has(stream.stream)) continue
    const candidates = files.filter((file) => !placed.has(file.key) && goesOn(file, stream))
    if (candidates.length === 0) continue
    const file =
      candidates.find((f) => f.device === stream.device && f.inode === stream.inode) ??
      candidates.find((f) => f.key === stream.path) ??
      candidates[0]!
    place(tailOrReconcile(file, stream, file.key === stream.path ? undefined : stream.path))
  }
  // 4: rewritten in place.
  for (const file of files) {
    if (placed.has(file.key)) continue
    const stream = byPath.get(file.key)
    if (stream !== undefined && !taken.has(stream.stream)) place({ _tag: "Reconcile", file, stream })
  }
  // 5: new.
  for (const file of files) if (!placed.has(file.key)) place({ _tag: "New", file })

  const gone = streams.filter(
    (stream) => !taken.has(stream.stream) && !stream.gone && !unlisted.some((prefix) => stream.path.startsWith(prefix))
  )
  return { actions, gone }
}
