/**
 * A source held in memory, for the sync's behaviour tests: files are a map the
 * test edits between syncs, versions are content hashes, and a hook runs
 * before each batch is read (to hold the sync still, move the TestClock's
 * work along, take the lease away, or fail).
 */
import { createHash } from "node:crypto"
import { Effect, Stream } from "effect"
import type { PlannedItem, ReadItem, Source } from "../../src/source/Source.js"

export const hashOf = (content: string) => createHash("sha256").update(content).digest("hex")

export interface SimSource extends Source {
  readonly files: Map<string, string>
  /** Batches read so far. */
  readonly batchesRead: () => number
  /** Items read so far. */
  readonly itemsRead: () => number
}

export type BeforeRead = (batch: number, items: ReadonlyArray<PlannedItem>) => Effect.Effect<void>

export const make = (root: string, files: Record<string, string>, beforeRead: BeforeRead = () => Effect.void) => {
  const current = new Map(Object.entries(files))
  let batches = 0
  let items = 0
  const source: SimSource = {
    kind: "dir",
    root,
    files: current,
    batchesRead: () => batches,
    itemsRead: () => items,
    target: () => Effect.succeed({}),
    plan: () =>
      Effect.sync(() => ({
        _tag: "Complete" as const,
        items: Stream.fromIterable(
          [...current.entries()]
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([key, content]): PlannedItem => ({ key, version: hashOf(content).slice(0, 16) }))
        ),
        unlisted: Effect.succeed([])
      })),
    read: (planned) =>
      Effect.suspend(() => {
        batches++
        return beforeRead(batches, planned)
      }).pipe(
        Effect.map(() =>
          planned.map((item): ReadItem => {
            items++
            const content = current.get(item.key) ?? ""
            const bytes = Buffer.from(content)
            return {
              key: item.key,
              content: bytes,
              size: bytes.byteLength,
              mtime: null,
              contentHash: hashOf(content),
              version: hashOf(content).slice(0, 16)
            }
          })
        )
      ),
    watermark: () => ({ kind: "sim" })
  }
  return source
}

/** `count` small files, `prefix/note-00001.md`… */
export const notes = (count: number, prefix = "n", variant = ""): Record<string, string> =>
  Object.fromEntries(
    Array.from({ length: count }, (_, i) => [
      `${prefix}/note-${String(i).padStart(5, "0")}.md`,
      `# ${prefix} ${i}${variant}\n`
    ])
  )
