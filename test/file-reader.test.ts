import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Scope, Stream } from "effect"
import * as DirSource from "../src/source/DirSource.js"
import * as FileReader from "../src/source/FileReader.js"
import type { PlannedItem } from "../src/source/Source.js"
import * as Folder from "./support/folder.js"

describe("file reader (worker thread)", () => {
  it.scoped("answers a batch in order: bytes and hashes of text files, the reason for each other entry", () =>
    Effect.gen(function* () {
      const outside = Folder.makeFolder({ "secret.txt": "outside\n" })
      const root = Folder.makeFolder({
        "a.md": "# A\n",
        "b/ü.md": "Grüße 🌊\n",
        "empty.md": "",
        "big.md": "x".repeat(2000),
        "nul.bin": Buffer.from([0x61, 0x00, 0x62]),
        "latin1.txt": Buffer.from([0x63, 0x61, 0x66, 0xe9]),
        "sub/keep.md": "kept\n"
      })
      fs.symlinkSync(path.join(outside, "secret.txt"), path.join(root, "link.md"))
      const reader = yield* FileReader.make
      const keys = ["a.md", "b/ü.md", "empty.md", "big.md", "nul.bin", "latin1.txt", "link.md", "sub", "gone.md"]
      const { answers, bytes } = yield* reader.read(root, keys, 1000)
      const text = (i: number) => {
        const answer = answers[i]!
        if ("problem" in answer) throw new Error(`${keys[i]}: ${answer.problem}`)
        return bytes.toString("utf8", answer.at, answer.at + answer.size)
      }
      expect(text(0)).toBe("# A\n")
      expect(text(1)).toBe("Grüße 🌊\n")
      expect(text(2)).toBe("")
      expect(answers[0]).toMatchObject({ hash: Folder.sha256("# A\n"), size: 4 })
      expect(answers[1]).toMatchObject({ hash: Folder.sha256("Grüße 🌊\n"), size: Buffer.byteLength("Grüße 🌊\n") })
      const mtime = fs.statSync(path.join(root, "a.md"), { bigint: true }).mtimeNs / 1000n
      expect(answers[0]).toMatchObject({ mtimeMicros: Number(mtime) })
      expect(answers.slice(3)).toEqual([
        { problem: "tooLarge", size: 2000 },
        { problem: "binary" },
        { problem: "notUtf8" },
        { problem: "symlink" },
        { problem: "notFile" },
        expect.objectContaining({ problem: "errno", code: "ENOENT" })
      ])
    })
  )

  it.scoped("keeps every file's bytes when a batch outgrows the one before", () =>
    Effect.gen(function* () {
      const contents = Array.from({ length: 6 }, (_, i) => `${i}`.repeat(3000 + i * 1000))
      const root = Folder.makeFolder(Object.fromEntries(contents.map((content, i) => [`f${i}.md`, content])))
      const reader = yield* FileReader.make
      // A small batch first: the next starts from its size and has to grow, more than once.
      for (const keys of [["f0.md"], contents.map((_, i) => `f${i}.md`)]) {
        const { answers, bytes } = yield* reader.read(root, keys, 1_000_000)
        const texts = answers.map((answer) =>
          "problem" in answer ? answer.problem : bytes.toString("utf8", answer.at, answer.at + answer.size)
        )
        expect(texts).toEqual(keys.map((key) => contents[Number(key.slice(1, -3))]))
        expect(answers.map((answer) => "hash" in answer && answer.hash)).toEqual(texts.map(Folder.sha256))
      }
    })
  )

  it.scoped("a folder's plan looks its versions up on the thread from the second batch on, as it would itself", () =>
    Effect.gen(function* () {
      const files: Record<string, string> = {}
      for (let i = 0; i < 2500; i++) files[`d${i % 7}/n${i}.md`] = `note ${i}`.repeat(1 + (i % 5))
      const root = Folder.makeFolder(files)
      const source = yield* DirSource.make(root)
      const listing = yield* source.plan()
      const items = Chunk.toReadonlyArray(yield* Stream.runCollect(listing.items)) as ReadonlyArray<PlannedItem>
      expect(items.length).toBe(2500)
      const looked = (item: PlannedItem) => (item as unknown as { looked: string | undefined }).looked
      const batches = [items.slice(0, 1000), items.slice(1000, 2000), items.slice(2000)]
      // One goes before it is looked up: its version says so, as the lookup here would.
      fs.rmSync(path.join(root, batches[2]![0]!.key))
      for (const batch of batches) yield* source.lookUpVersions!(batch)
      expect(batches[0]!.every((item) => looked(item) === undefined)).toBe(true)
      expect([...batches[1]!, ...batches[2]!].every((item) => looked(item) !== undefined)).toBe(true)
      for (const item of items) {
        const expected = fs.existsSync(path.join(root, item.key))
          ? (() => {
              const stat = fs.lstatSync(path.join(root, item.key), { bigint: true })
              return `${stat.size}:${stat.mtimeNs / 1000n}`
            })()
          : "unknown"
        expect(item.version).toBe(expected)
      }
    })
  )

  it.effect("fails every read once its thread is stopped", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const reader = yield* Scope.extend(FileReader.make, scope)
      const root = Folder.makeFolder({ "a.md": "# A\n" })
      expect((yield* reader.read(root, ["a.md"], 1000)).answers).toHaveLength(1)
      yield* Scope.close(scope, Exit.void)
      const failure = yield* Effect.flip(reader.read(root, ["a.md"], 1000))
      expect(failure).toMatchObject({ _tag: "FileReaderFailed" })
      expect(failure.reason).toContain("file reading thread stopped")
    })
  )
})
