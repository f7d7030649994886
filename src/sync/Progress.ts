/** What a running sync has done so far, for progress display and summaries. */
export interface Progress {
  readonly phase: "starting" | "planning" | "importing" | "deleting" | "finishing"
  /** Items the plan listed so far. */
  readonly seen: number
  /** Items the plan found changed (to read and write). */
  readonly toImport: number
  /** Items the op has to do in all, those banked before this process included. */
  readonly planned: number
  /** Items whose content was read. */
  readonly read: number
  readonly imported: number
  readonly failed: number
  readonly deleted: number
  readonly bytes: number
  /** Items banked by this process. */
  readonly banked: number
  readonly restarts: number
  /** Transient failures recovered from in this process. */
  readonly retries: number
}

export const initialProgress: Progress = {
  phase: "starting",
  seen: 0,
  toImport: 0,
  planned: 0,
  read: 0,
  imported: 0,
  failed: 0,
  deleted: 0,
  bytes: 0,
  banked: 0,
  restarts: 0,
  retries: 0
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
