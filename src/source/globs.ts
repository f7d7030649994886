/** Which keys a source syncs: `--include` / `--exclude` globs over keys. */
import picomatch from "picomatch"

export const defaultInclude: ReadonlyArray<string> = ["**"]
/** Left out of every source by default. */
export const defaultExclude: ReadonlyArray<string> = ["node_modules/**", "**/node_modules/**"]

/** Glob matching that also works on names containing a newline (picomatch's `.` does not match one). */
export const matcher = (globs: ReadonlyArray<string>) => {
  const patterns = globs.map((glob) => {
    const re = picomatch.makeRe(glob, { dot: true })
    return new RegExp(re.source, `${re.flags}s`)
  })
  return (key: string) => patterns.some((re) => re.test(key))
}
