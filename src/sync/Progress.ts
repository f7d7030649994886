/** What a running sync has done so far, for progress display and summaries. */
export interface Progress {
  readonly phase: "starting" | "planning" | "importing" | "deleting" | "finishing"
  /** Items the plan listed so far, the listing's problems included. */
  readonly seen: number
  /** Items the plan found changed (to read and write), and the listing's problems. */
  readonly toImport: number
  /** The listing goes on while the import runs (a first import): `toImport` is what it found so far. */
  readonly listing: boolean
  /** Items the op has to do in all, those banked before this process included. */
  readonly planned: number
  /** Items whose content was read. */
  readonly read: number
  readonly imported: number
  /** Re-checked items (read again only because their mtime was recent) whose content had not changed. */
  readonly rechecked: number
  /** Items that could not be imported, the listing's problems included. */
  readonly failed: number
  /**
   * Of `failed`, the problems of the current plan's listing: a retry within the
   * process lists them again, and they replace these.
   */
  readonly listingFailed: number
  readonly deleted: number
  readonly bytes: number
  /** Items banked by this process (read, failed to read, or deleted; not the listing's problems). */
  readonly banked: number
  readonly restarts: number
  /** Transient failures recovered from in this process. */
  readonly retries: number
}

export const initialProgress: Progress = {
  phase: "starting",
  seen: 0,
  toImport: 0,
  listing: false,
  planned: 0,
  read: 0,
  imported: 0,
  rechecked: 0,
  failed: 0,
  listingFailed: 0,
  deleted: 0,
  bytes: 0,
  banked: 0,
  restarts: 0,
  retries: 0
}

/** Items of the import phase done: imported, failed, or re-checked and found unchanged. */
export const doneOf = (p: Progress) => p.imported + p.failed + p.rechecked

/** How many names of imported and deleted items a real sync keeps (a dry run keeps them all). */
export const sampleSize = 20

/** The first names of what a sync imported and deleted, at most `sampleSize` of each. */
export interface KeySample {
  readonly imported: ReadonlyArray<string>
  readonly deleted: ReadonlyArray<string>
}

export const emptySample: KeySample = { imported: [], deleted: [] }

/** `sample` with `imported` and `deleted` added, up to `sampleSize` of each. */
export const addToSample = (
  sample: KeySample,
  imported: ReadonlyArray<string>,
  deleted: ReadonlyArray<string>
): KeySample => {
  const upTo = (kept: ReadonlyArray<string>, more: ReadonlyArray<string>) =>
    kept.length >= sampleSize || more.length === 0 ? kept : [...kept, ...more.slice(0, sampleSize - kept.length)]
  return { imported: upTo(sample.imported, imported), deleted: upTo(sample.deleted, deleted) }
}

/** Items/s and seconds left for the import phase, from two samples. */
export const rateAndEta = (
  done: number,
  total: number,
  elapsedMillis: number
): { readonly perSecond: number; readonly etaSeconds: number | null } => {
  const perSecond = elapsedMillis > 0 ? (done * 1000) / elapsedMillis : 0
  return { perSecond, etaSeconds: perSecond > 0 ? Math.max(0, (total - done) / perSecond) : null }
}
