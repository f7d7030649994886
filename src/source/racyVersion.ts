/**
 * A folder item's version when it is not trusted: the file was modified within
 * the mtime tick of its read, so it could change again without its mtime
 * changing. Such a version is stored marked, with the content hash it was read
 * with, and the next sync reads the file again: if the content hash is the
 * same, the file is unchanged (re-checked), not imported.
 */

/** `version` marked as not trusted, remembering the content it was read with. */
export const racyVersion = (version: string, contentHash: string) => `${version}:racy:${contentHash}`

/** Whether `stored` is `planned` marked as not trusted (a re-check: the listed size and mtime did not move). */
export const isRecheckOf = (stored: string, planned: string) =>
  stored === `${planned}:racy` || stored.startsWith(`${planned}:racy:`)

/** The content hash a marked version was read with (null for one that does not say). */
export const racyHashOf = (stored: string): string | null => {
  const at = stored.indexOf(":racy:")
  return at === -1 ? null : stored.slice(at + ":racy:".length)
}
