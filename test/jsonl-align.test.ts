import { describe, expect, it } from "vitest"
import { alignByHash } from "../src/source/jsonl/Align.js"
import type { Stream } from "../src/entries/EntriesStore.js"
import type { ListedFile } from "../src/source/jsonl/JsonlFiles.js"
import { match } from "../src/source/jsonl/Match.js"

const seq = (text: string) => text.split("")

/** The matches are pairs of equal entries, increasing on both sides. */
const wellFormed = (
  a: ReadonlyArray<string>,
  b: ReadonlyArray<string>,
  matches: ReadonlyArray<readonly [number, number]>
) => {
  for (const [i, j] of matches) expect(a[i]).toBe(b[j])
  for (let k = 1; k < matches.length; k++) {
    expect(matches[k]![0]).toBeGreaterThan(matches[k - 1]![0])
    expect(matches[k]![1]).toBeGreaterThan(matches[k - 1]![1])
  }
}

describe("aligning a file's entries with the stored ones", () => {
  it("matches an unchanged file entry for entry, and an appended one up to its tail", () => {
    expect(alignByHash(seq("abc"), seq("abc"))).toEqual([
      [0, 0],
      [1, 1],
      [2, 2]
    ])
    expect(alignByHash(seq("abc"), seq("abcde"))).toEqual([
      [0, 0],
      [1, 1],
      [2, 2]
    ])
  })

  it("a compacted run of identical entries is matched entry for entry, never anchoring the rest as new", () => {
    const stored = ["start", ...Array(300).fill("empty"), "q1", "q2", ...Array(200).fill("empty")]
    const file = ["summary", ...stored.slice(151), "after"]
    const matches = alignByHash(stored, file)
    wellFormed(stored, file, matches)
    // Everything the file kept of the stored entries is matched: only the summary and "after" are new.
    expect(matches).toHaveLength(file.length - 2)
    const matchedFile = new Set(matches.map(([, j]) => j))
    expect(file.filter((_, j) => !matchedFile.has(j))).toEqual(["summary", "after"])
  })

  it("unique entries anchor a reordering; what moved is matched where it can be, the rest is new or gone", () => {
    const stored = seq("abcdefgh")
    const file = seq("efghabcd")
    const matches = alignByHash(stored, file)
    wellFormed(stored, file, matches)
    expect(matches).toHaveLength(4)
  })

  it("nothing in common matches nothing", () => {
    expect(alignByHash(seq("abc"), seq("xyz"))).toEqual([])
    expect(alignByHash([], seq("xyz"))).toEqual([])
  })

  it("random edits: the matches are always well formed, and all shared entries match when nothing moved", () => {
    let state = 7
    const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    for (let round = 0; round < 200; round++) {
      const stored = Array.from(
        { length: 50 + Math.floor(random() * 50) },
        () => "abcdeffff"[Math.floor(random() * 9)]!
      )
      const file = stored.filter(() => random() > 0.2)
      const inserted = [...file]
      for (let k = 0; k < 5; k++) inserted.splice(Math.floor(random() * inserted.length), 0, `new-${k}`)
      const matches = alignByHash(stored, inserted)
      wellFormed(stored, inserted, matches)
      // Deletions and insertions only: every kept entry can be matched.
      expect(matches.length).toBe(file.length)
    }
  })
})

const file = (key: string, extra: Partial<ListedFile> = {}): ListedFile => ({
  key,
  absolute: `/root/${key}`,
  size: 100,
  mtimeUs: 2,
  device: 1,
  inode: 10,
  ...extra
})

const stream = (id: number, path: string, extra: Partial<Stream> = {}): Stream => ({
  stream: id,
  path,
  gone: false,
  fingerprint: "f",
  device: 1,
  inode: 10,
  size: 100,
  mtimeUs: 1,
  racy: false,
  processed: 100,
  lines: 3,
  anchor: null,
  tailHashes: [],
  nextSeq: 3,
  backlog: 0,
  backlogCap: null,
  pendingTail: false,
  lastPath: "new",
  ...extra
})

describe("matching files to streams", () => {
  it("an unchanged file is left alone without reading it", () => {
    const asked: Array<string> = []
    const matched = match(
      [file("a.jsonl", { mtimeUs: 1 })],
      [stream(1, "a.jsonl")],
      (f) => (asked.push(f.key), true),
      []
    )
    expect(matched.actions.map((a) => a._tag)).toEqual(["Unchanged"])
    expect(asked).toEqual([])
  })

  it("rotation: the stream goes on in the renamed file; the new file under the old name is a new stream", () => {
    const matched = match(
      [file("app.jsonl", { inode: 11 }), file("app.jsonl.1")],
      [stream(1, "app.jsonl")],
      (f) => f.key === "app.jsonl.1",
      []
    )
    expect(matched.actions.map((a) => [a._tag, a.file.key, "movedFrom" in a ? a.movedFrom : undefined])).toEqual([
      ["Tail", "app.jsonl.1", "app.jsonl"],
      ["New", "app.jsonl", undefined]
    ])
    expect(matched.gone).toEqual([])
  })

  it("a file rewritten in place, the stream going on nowhere else, is reconciled", () => {
    const matched = match([file("a.jsonl")], [stream(1, "a.jsonl")], () => false, [])
    expect(matched.actions.map((a) => a._tag)).toEqual(["Reconcile"])
  })

  it("a stream with a backlog reconciles even where its anchor still holds", () => {
    const matched = match([file("a.jsonl")], [stream(1, "a.jsonl", { backlog: 5 })], () => true, [])
    expect(matched.actions.map((a) => a._tag)).toEqual(["Reconcile"])
  })

  it("among copies that all hold the stream, the one with its inode keeps it", () => {
    const matched = match(
      [file("copy.jsonl", { inode: 99 }), file("moved.jsonl", { inode: 10 })],
      [stream(1, "gone.jsonl")],
      () => true,
      []
    )
    expect(matched.actions.map((a) => [a._tag, a.file.key])).toEqual([
      ["Tail", "moved.jsonl"],
      ["New", "copy.jsonl"]
    ])
  })

  it("a stream whose file is not listed is gone, unless it lies under a folder the listing could not read", () => {
    expect(
      match([], [stream(1, "a.jsonl"), stream(2, "locked/b.jsonl")], () => false, ["locked/"]).gone.map((s) => s.stream)
    ).toEqual([1])
  })
})
