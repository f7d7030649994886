/**
 * The mass-change guard, as pure decisions: a sync may not import or delete
 * more than `max(20% of what is stored, 50)` items, nor empty a source whose
 * listing came back empty (an unmounted folder looks like that), unless it is
 * asked to (`--allow-mass-change`).
 *
 * The guard is there because a listing can be misread. A git commit range
 * cannot: when the watermark commit is an ancestor of the target, the commits
 * between them say what changed, however much that is (a 3000-commit pull), so
 * such a plan is not guarded. Folders, git reconciles (the watermark gone or
 * rewritten away) and JSONL reconciles are.
 */
import { Data } from "effect"

export class MassChangeRefused extends Data.TaggedError("MassChangeRefused")<{
  readonly sourceId: string
  readonly existing: number
  readonly imports: number
  readonly deletes: number
  readonly limit: number
  /** What the sink stores ("documents", "items"). */
  readonly noun: string
}> {
  override get message() {
    return this.imports <= this.limit && this.deletes <= this.limit
      ? `refusing to delete all ${this.deletes} ${this.noun} of ${this.sourceId}: the source lists nothing`
      : `refusing to ${this.deletes > this.limit ? `delete ${this.deletes}` : `import ${this.imports}`} of ${this.existing} ${this.noun} of ${this.sourceId} in one sync (limit ${this.limit})`
  }
  get hint() {
    return "if the source really changed that much, rerun with --allow-mass-change; an unmounted or emptied folder looks like this too"
  }
}

/** How many imports or deletions a sync may make without --allow-mass-change. */
export const massChangeLimit = (existing: number) => Math.max(Math.floor(existing * 0.2), 50)

export interface PlanSize {
  /** Whether the source listed everything (not only what changed). */
  readonly complete: boolean
  /** Items stored before the sync. */
  readonly existing: number
  /** Items the source listed. */
  readonly seen: number
  /** Listed items that are new or whose version moved (re-checks and retries excluded). */
  readonly moved: number
  readonly deletes: number
  /** The plan is the diff of a commit range whose start (the watermark) is an ancestor of its end. */
  readonly commitRange?: boolean
}

/**
 * Too big a change to make without being asked: more than the limit, or a
 * source that lists nothing at all while items exist, however few they are.
 * Deletions are checked on every run; imports only when the op begins (a
 * resumed op passed that check, and its imports are the rest of that work).
 */
export const isMassChange = (plan: PlanSize, resumed: boolean): boolean => {
  if (plan.existing === 0 || plan.commitRange === true) return false
  const limit = massChangeLimit(plan.existing)
  const importsTooMany = !resumed && plan.moved > limit
  const listsNothing = plan.complete && plan.seen === 0 && plan.deletes > 0
  return plan.deletes > limit || importsTooMany || listsNothing
}
