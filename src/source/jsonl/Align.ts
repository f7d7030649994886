/**
 * Aligning a file's entries with the stored ones after a rewrite (compaction,
 * truncation, a file replaced): which stored entry each line of the file is.
 *
 * By line hash, in the manner of patience diff: the equal start and end are
 * matched first; in what is left, entries whose hash occurs exactly once on
 * each side anchor the alignment (the longest run of them in the same order),
 * and the gaps between anchors are aligned the same way. A gap with no entry
 * unique on both sides holds only repeated entries: it is aligned exactly (the
 * longest common subsequence) when it is small enough, else by pairing the
 * rarest hash's entries in order. A run of identical entries (empty assistant turns,
 * repeated tool output) therefore never anchors anything: it can only be
 * matched entry for entry against a run of the same entries, so it can never
 * make the rest look new — the failure that imported thousands of duplicates
 * in one second elsewhere. Pairing equal entries is never wrong about content,
 * only perhaps about which of two identical entries is which.
 */

/** Pairs (stored index, file index), increasing in both. */
export type Matches = ReadonlyArray<readonly [number, number]>

interface Range {
  readonly aLo: number
  readonly aHi: number
  readonly bLo: number
  readonly bHi: number
}

/** Indices of the longest subsequence of `pairs` (sorted by a) whose b also increases. */
const longestIncreasing = (pairs: ReadonlyArray<readonly [number, number]>): Array<readonly [number, number]> => {
  // Patience sorting: tails[k] is the index of the smallest b ending a run of length k+1.
  const tails: Array<number> = []
  const previous: Array<number> = new Array(pairs.length).fill(-1)
  pairs.forEach(([, b], i) => {
    let lo = 0
    let hi = tails.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (pairs[tails[mid]!]![1] < b) lo = mid + 1
      else hi = mid
    }
    if (lo > 0) previous[i] = tails[lo - 1]!
    tails[lo] = i
  })
  const out: Array<readonly [number, number]> = []
  for (let i = tails.length > 0 ? tails[tails.length - 1]! : -1; i >= 0; i = previous[i]!) out.push(pairs[i]!)
  return out.reverse()
}

const counts = (hashes: ReadonlyArray<string>, lo: number, hi: number) => {
  const map = new Map<string, { count: number; first: number }>()
  for (let i = lo; i < hi; i++) {
    const seen = map.get(hashes[i]!)
    if (seen === undefined) map.set(hashes[i]!, { count: 1, first: i })
    else seen.count++
  }
  return map
}

/** Entries unique on both sides of a range, in their longest common order. */
const uniqueAnchors = (
  a: ReadonlyArray<string>,
  b: ReadonlyArray<string>,
  r: Range
): Array<readonly [number, number]> => {
  const inA = counts(a, r.aLo, r.aHi)
  const inB = counts(b, r.bLo, r.bHi)
  const unique: Array<readonly [number, number]> = []
  for (const [hash, seen] of inA) {
    const other = inB.get(hash)
    if (seen.count === 1 && other?.count === 1) unique.push([seen.first, other.first])
  }
  return unique.length === 0 ? [] : longestIncreasing(unique.sort((x, y) => x[0] - y[0]))
}

/** For a large range with no unique entry: the rarest shared hash's entries, paired in order. */
const rarestPairs = (
  a: ReadonlyArray<string>,
  b: ReadonlyArray<string>,
  r: Range
): Array<readonly [number, number]> => {
  const inA = counts(a, r.aLo, r.aHi)
  const inB = counts(b, r.bLo, r.bHi)
  let rarest: string | undefined
  let rarity = Infinity
  for (const [hash, seen] of inA) {
    const other = inB.get(hash)
    if (other !== undefined && Math.max(seen.count, other.count) < rarity) {
      rarest = hash
      rarity = Math.max(seen.count, other.count)
    }
  }
  if (rarest === undefined) return []
  const positionsIn = (hashes: ReadonlyArray<string>, lo: number, hi: number) => {
    const out: Array<number> = []
    for (let i = lo; i < hi; i++) if (hashes[i] === rarest) out.push(i)
    return out
  }
  const pa = positionsIn(a, r.aLo, r.aHi)
  const pb = positionsIn(b, r.bLo, r.bHi)
  return pa.slice(0, Math.min(pa.length, pb.length)).map((ia, k) => [ia, pb[k]!] as const)
}

/** Gaps up to this many cells (stored × file entries) are aligned exactly. */
const exactCells = 4_000_000

/** The longest common subsequence of a small range, by dynamic programming. */
const exactly = (a: ReadonlyArray<string>, b: ReadonlyArray<string>, r: Range): Array<readonly [number, number]> => {
  const n = r.aHi - r.aLo
  const m = r.bHi - r.bLo
  const width = m + 1
  const table = new Uint32Array((n + 1) * width)
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i * width + j] =
        a[r.aLo + i] === b[r.bLo + j]
          ? table[(i + 1) * width + j + 1]! + 1
          : Math.max(table[(i + 1) * width + j]!, table[i * width + j + 1]!)
    }
  }
  const out: Array<readonly [number, number]> = []
  let i = 0
  let j = 0
  while (i < n && j < m) {
    if (a[r.aLo + i] === b[r.bLo + j]) {
      out.push([r.aLo + i, r.bLo + j])
      i++
      j++
    } else if (table[(i + 1) * width + j]! >= table[i * width + j + 1]!) i++
    else j++
  }
  return out
}

/** Aligns `stored` with `file` (sequences of line hashes). */
export const alignByHash = (stored: ReadonlyArray<string>, file: ReadonlyArray<string>): Matches => {
  const matches: Array<readonly [number, number]> = []
  const stack: Array<Range> = [{ aLo: 0, aHi: stored.length, bLo: 0, bHi: file.length }]
  while (stack.length > 0) {
    let { aLo, aHi, bLo, bHi } = stack.pop()!
    while (aLo < aHi && bLo < bHi && stored[aLo] === file[bLo]) matches.push([aLo++, bLo++])
    while (aLo < aHi && bLo < bHi && stored[aHi - 1] === file[bHi - 1]) matches.push([--aHi, --bHi])
    if (aLo === aHi || bLo === bHi) continue
    const range = { aLo, aHi, bLo, bHi }
    const unique = uniqueAnchors(stored, file, range)
    if (unique.length === 0 && (aHi - aLo) * (bHi - bLo) <= exactCells) {
      matches.push(...exactly(stored, file, range))
      continue
    }
    const anchors = unique.length > 0 ? unique : rarestPairs(stored, file, range)
    let from: readonly [number, number] = [aLo, bLo]
    for (const [ia, ib] of anchors) {
      matches.push([ia, ib])
      stack.push({ aLo: from[0], aHi: ia, bLo: from[1], bHi: ib })
      from = [ia + 1, ib + 1]
    }
    if (anchors.length > 0) stack.push({ aLo: from[0], aHi, bLo: from[1], bHi })
  }
  return matches.sort((x, y) => x[0] - y[0])
}
