import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as CatFile from "../src/source/git/CatFile.js"
import * as Git from "../src/source/git/Git.js"
import * as Repo from "./support/repo.js"

describe("git plumbing (real git)", () => {
  it.scoped(
    "cat-file answers many overlapping reads in order, whatever their sizes, and says when a blob is missing",
    () =>
      Effect.gen(function* () {
        const repo = Repo.makeRepo()
        const files: Record<string, Buffer> = {
          "empty.md": Buffer.alloc(0),
          "newline.md": Buffer.from("\n"),
          // Several pipe buffers long: its answer arrives in many chunks.
          "large.bin": randomBytes(3 * 1024 * 1024 + 17)
        }
        for (let i = 0; i < 300; i++) files[`small-${i}.md`] = randomBytes(i * 37)
        Repo.commit(repo, files)
        const blobs = Repo.treeBlobs(repo)
        const catFile = yield* CatFile.make(repo)
        const keys = [...Object.keys(files), "missing"]
        const answers = yield* Effect.forEach(
          keys,
          (key) => catFile.read(blobs[key] ?? "0123456789012345678901234567890123456789"),
          { concurrency: 32 }
        )
        answers.forEach((answer, i) => {
          const key = keys[i]!
          if (key === "missing") expect(answer).toEqual({ _tag: "Missing" })
          else expect(answer._tag === "Found" && answer.bytes.equals(files[key]!), key).toBe(true)
        })
      })
  )

  it.scoped("a cat-file that cannot run fails its reads with the reason", () =>
    Effect.gen(function* () {
      const notRepo = fs.mkdtempSync(path.join(os.tmpdir(), "tidemark-not-repo-"))
      const catFile = yield* CatFile.make(notRepo)
      const read = yield* Effect.either(catFile.read("0123456789012345678901234567890123456789"))
      expect(Either.isLeft(read) && read.left.reason).toMatch(
        /git cat-file stopped \(exit 128\): fatal: not a git repository/
      )
    })
  )

  it("keeps every name distinct: UTF-8 as text, other bytes as \\xNN", () => {
    expect(Git.keyOf(Buffer.from("日本語/ノート.md"))).toBe("日本語/ノート.md")
    expect(Git.keyOf(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x6d, 0x64]))).toBe("caf\\xe9.md")
    // A valid sequence beside an invalid one is kept as text.
    expect(Git.keyOf(Buffer.concat([Buffer.from("é"), Buffer.from([0xff]), Buffer.from("\n")]))).toBe("é\\xff\n")
    // A truncated sequence at the end.
    expect(Git.keyOf(Buffer.from([0x61, 0xe6, 0x97]))).toBe("a\\xe6\\x97")
  })

  it("reads a raw diff: changes, deletions, renames and type changes, names with NUL-free odd bytes", () => {
    const oid = (c: string) => c.repeat(40)
    const record = (meta: string, ...names: Array<string>) =>
      Buffer.from(`${meta}\0${names.map((n) => `${n}\0`).join("")}`)
    const output = Buffer.concat([
      record(`:000000 100644 ${oid("0")} ${oid("a")} A`, "new\nline.md"),
      record(`:100644 000000 ${oid("b")} ${oid("0")} D`, "gone.md"),
      record(`:100644 100644 ${oid("c")} ${oid("d")} R087`, "old name.md", "new name.md"),
      record(`:100644 120000 ${oid("e")} ${oid("f")} T`, "now-a-link.md"),
      record(`:160000 160000 ${oid("1")} ${oid("2")} M`, "vendor/sub")
    ])
    expect(Git.parseRawDiff(output)).toEqual([
      { _tag: "Present", entry: { key: "new\nline.md", kind: "file", oid: oid("a") } },
      { _tag: "Gone", key: "gone.md" },
      { _tag: "Gone", key: "old name.md" },
      { _tag: "Present", entry: { key: "new name.md", kind: "file", oid: oid("d") } },
      { _tag: "Present", entry: { key: "now-a-link.md", kind: "symlink", oid: oid("f") } },
      { _tag: "Present", entry: { key: "vendor/sub", kind: "submodule", oid: oid("2") } }
    ])
  })
})
