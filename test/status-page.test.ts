/**
 * The status page in a real browser: Debian's chromium, headless, driven by
 * playwright-core, on `tidemark serve`. A sync held at a key (so it is running
 * for as long as the test wants, whatever the machine's speed) shows as
 * running with its progress, rate and ETA; a finished one with its last sync;
 * and the page refreshes itself when the held sync finishes. A screenshot is
 * saved in test-artifacts/.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { chromium, type Browser } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Block from "./support/block.js"
import * as Cli from "./support/cli.js"
import * as Folder from "./support/folder.js"
import * as Serve from "./support/serve.js"
import * as TestDatabase from "./support/TestDatabase.js"

/** Debian's package (`.ci/run` installs it when missing). */
const chromiumPath = "/usr/bin/chromium"
const artifacts = path.join(Cli.repoRoot, "test-artifacts")

let url: string
let browser: Browser
const env = () => ({ DATABASE_URL: url })

beforeAll(async () => {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: install Debian's chromium (apt-get install chromium)`)
  }
  url = await TestDatabase.createDatabase("status_page")
  expect((await Cli.run(["migrate"], env())).code).toBe(0)
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"], headless: true })
}, 120_000)
afterAll(async () => {
  await browser?.close()
  if (url !== undefined) await TestDatabase.dropDatabase(url)
})

describe("the status page (headless chromium)", () => {
  it("shows a running sync with progress, rate and ETA, a finished one with its last sync, and refreshes itself", async () => {
    const finished = Folder.makeFolder(Folder.notes(25))
    expect((await Cli.run(["sync", finished], env())).code).toBe(0)

    const running = Folder.held(1200)
    const held = await Block.blockKey(url, running, Folder.heldKey)
    const sync = Cli.tidemark(["sync", running, "--concurrency", "1"], env())
    const server = Cli.tidemark(["serve", "--port", "0"], env())
    try {
      await Block.untilWaiting(url, sync.alive)
      // The batches before the held key are banked: the op has progress to show.
      for (;;) {
        const [op] = await Folder.query<{ banked: string }>(
          url,
          "SELECT banked FROM tidemark.ops WHERE source_id = $1 AND status = 'open'",
          [running]
        )
        if (op !== undefined && Number(op.banked) > 0) break
        await new Promise((resolve) => setImmediate(resolve))
      }
      const base = await Serve.addressOf(server)
      const page = await browser.newPage({ viewport: { width: 1280, height: 640 } })
      await page.goto(base)

      const runningRow = page.locator(`tr[data-source="${running}"]`)
      await runningRow.and(page.locator('[data-state="running"]')).waitFor()
      const progress = await runningRow.locator("td.progress").innerText()
      // 2,401 planned (1,200 + the held key + 1,200), some banked, a rate and what is left at it.
      expect(progress).toMatch(/^\s*[\d,]+ of 2,401 \(\d+%\) · [\d.,]+ items\/s · ETA \d+/)
      expect(Number(await runningRow.locator('[role="progressbar"]').getAttribute("aria-valuenow"))).toBeGreaterThan(0)
      expect(await runningRow.locator(".state").innerText()).toBe("running")
      expect(await runningRow.innerText()).toContain(`(pid ${sync.process.pid})`)

      const finishedRow = page.locator(`tr[data-source="${finished}"]`)
      expect(await finishedRow.getAttribute("data-state")).toBe("idle")
      expect(await finishedRow.innerText()).toContain("25 documents")
      expect(await finishedRow.locator("td.last-sync").innerText()).toMatch(/ ago$/)
      expect(await page.locator("#updated").innerText()).toMatch(/^2 sources · tidemark /)
      // The fleet part: migrate installed the job engine, no worker runs.
      expect(await page.locator("#workers").innerText()).toContain("no live workers")
      expect(await page.locator('#queues tr[data-queue="tidemark-sync"]').count()).toBe(1)

      fs.mkdirSync(artifacts, { recursive: true })
      await page.screenshot({ path: path.join(artifacts, "status-page.png"), fullPage: true })

      // Let the sync go: the page, not reloaded, shows it finished.
      await held.release()
      expect((await sync.finished).code).toBe(0)
      await runningRow.and(page.locator('[data-state="idle"]')).waitFor()
      expect(await runningRow.innerText()).toContain("2,401 documents")
      await page.close()
    } finally {
      await held.release()
      server.process.kill("SIGTERM")
      await server.finished
      if (sync.alive()) sync.process.kill("SIGKILL")
    }
  })
})
