import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import * as DirSource from "../src/source/DirSource.js"
import { ItemProblem, type PlannedItem } from "../src/source/Source.js"
import * as Folder from "./support/folder.js"

const listed = (source: Effect.Effect.Success<ReturnType<typeof DirSource.make>>) =>
  Effect.gen(function* () {
    const listing = yield* source.plan()
    const entries = Chunk.toReadonlyArray(yield* Stream.runCollect(listing.items))
    return { listing, items: entries.filter((entry): entry is PlannedItem => !(entry instanceof ItemProblem)) }
  })

describe("folder source versions", () => {
  it.scoped("are looked up a batch at a time on the reading thread, the same as one at a time", () =>
    Effect.gen(function* () {
      const root = Folder.makeFolder({ "a.md": "# A\n", "b/c.md": "# C\n", "gone.md": "soon gone\n" })
      fs.utimesSync(path.join(root, "a.md"), new Date(1_700_000_000_123), new Date(1_700_000_000_123))
      const source = yield* DirSource.make(root)
      const one = yield* listed(source)
      const oneAtATime = one.items.map((item) => item.version)
      const batch = yield* listed(source)
      fs.rmSync(path.join(root, "gone.md"))
      yield* batch.listing.lookUpVersions!(batch.items)
      // A file changed after the batch lookup: its item keeps what the lookup found.
      fs.utimesSync(path.join(root, "b", "c.md"), new Date(), new Date())
      expect(batch.items.map((item) => item.key)).toEqual(["a.md", "b/c.md", "gone.md"])
      expect(batch.items.map((item) => item.version)).toEqual([oneAtATime[0], oneAtATime[1], "unknown"])
      // Size and mtime in whole microseconds (truncated), whichever way they were looked up.
      expect(oneAtATime[0]).toMatch(/^4:1700000000\d{6}$/)
      // Asked for one at a time, a version is looked up then.
      const later = yield* listed(source)
      expect(later.items.map((item) => item.version)[1]).not.toBe(oneAtATime[1])
    })
  )
})
