import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    // Hang guards only (no test asserts speed): a loaded CI machine runs the crash tests several times slower.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // Two cores: files run two at a time, each against its own database.
    maxWorkers: 2,
    minWorkers: 1
  }
})
