import { describe, expect, it } from "@effect/vitest"
import yaml from "js-yaml"
import { loadSimpleFrontmatter } from "../src/sink/simpleFrontmatter.js"

const keys = ["title", "tags", "a.b", "my-key", "k_1", "x", "constructor", "True", "null", "1st", "_x", " title", "é"]
const separators = [": ", ":  ", ":", " : "]
const values = [
  "Note 12",
  "hello  world",
  "a -b",
  "a.b-c_d",
  "Yes",
  "No",
  "on",
  "NaN",
  "Infinity",
  "e5",
  "inf",
  "true",
  "False",
  "NULL",
  "Null",
  "~",
  "[]",
  "[a]",
  "[a, b]",
  "[a,b]",
  "[a,  b]",
  "[a ,b]",
  "[true]",
  "[a b]",
  "[a, null]",
  "[a, ]",
  "[a, [b]]",
  "12",
  "1.5",
  "0x1F",
  "2024-01-02",
  "'q'",
  '"q"',
  "a # c",
  "a: b",
  "a:b",
  "",
  "ü",
  "a\r",
  "a ",
  "- a",
  "{a: b}"
]

/** A seeded generator: the same blocks on every run. */
const random = (() => {
  let state = 20261122
  return (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31
    // The high bits: an LCG's low bits repeat with a short period.
    return Math.floor((state / 2 ** 31) * n)
  }
})()
const pick = <A>(xs: ReadonlyArray<A>) => xs[random(xs.length)]!

const viaYaml = (block: string) => {
  try {
    return { value: yaml.load(block, { schema: yaml.CORE_SCHEMA }) }
  } catch (error) {
    return { error: (error as Error).message }
  }
}

describe("simple frontmatter", () => {
  it("reads what js-yaml reads wherever it answers, and leaves the rest to js-yaml", () => {
    let answered = 0
    for (let i = 0; i < 20000; i++) {
      const block = Array.from({ length: 1 + random(4) }, () => `${pick(keys)}${pick(separators)}${pick(values)}`).join(
        random(10) === 0 ? "\n\n" : "\n"
      )
      const simple = loadSimpleFrontmatter(block)
      if (simple === undefined) continue
      answered++
      expect(viaYaml(block), block).toEqual({ value: simple })
    }
    // Enough of the generated blocks are of the simple kind for the comparison to mean something.
    expect(answered).toBeGreaterThan(300)
  })

  it("answers the common shapes and declines what it cannot be sure of", () => {
    expect(loadSimpleFrontmatter("title: Note 12\ntags: [t1, t2]")).toEqual({ title: "Note 12", tags: ["t1", "t2"] })
    expect(loadSimpleFrontmatter("tags: []")).toEqual({ tags: [] })
    for (const declined of [
      "title: 'quoted'",
      "date: 2024-01-02",
      "a: b\na: c",
      "draft: true",
      "",
      "a: b # note",
      "x:\n  y: z"
    ]) {
      expect(loadSimpleFrontmatter(declined), declined).toBeUndefined()
    }
  })
})
