/**
 * Shows a running sync's progress: a bar with rate and ETA redrawn on a TTY,
 * a plain line every few seconds otherwise, JSON lines with `--json`. All on
 * stderr, so stdout carries only the result.
 */
import { Clock, Duration, Effect, Ref } from "effect"
import { type Progress, rateAndEta } from "../sync/Progress.js"

export type ProgressMode = "tty" | "plain" | "json"

export const modeFor = (json: boolean): ProgressMode => (json ? "json" : process.stderr.isTTY ? "tty" : "plain")

const formatSeconds = (seconds: number) => {
  const s = Math.round(seconds)
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
      : `${s}s`
}

export const describe = (p: Progress, elapsedMillis: number, barWidth?: number): string => {
  if (p.phase === "planning" || p.phase === "starting") return `planning: ${p.seen} items listed, ${p.toImport} changed`
  const done = p.imported + p.failed
  const { perSecond, etaSeconds } = rateAndEta(done, p.toImport, elapsedMillis)
  const share = p.toImport === 0 ? 1 : done / p.toImport
  const bar = barWidth === undefined ? "" : `[${"#".repeat(Math.round(share * barWidth)).padEnd(barWidth, ".")}] `
  const eta = etaSeconds === null ? "" : `, ETA ${formatSeconds(etaSeconds)}`
  const extra = [p.failed > 0 ? `${p.failed} failed` : "", p.deleted > 0 ? `${p.deleted} deleted` : ""].filter(Boolean)
  return `${p.phase}: ${bar}${done}/${p.toImport} (${Math.floor(share * 100)}%), ${perSecond.toFixed(0)} items/s${eta}${extra.length > 0 ? `, ${extra.join(", ")}` : ""}`
}

/**
 * Forks the reporter into the current scope. A TTY is redrawn five times a
 * second; plain and JSON output get a line at every phase change and every
 * five seconds within a phase.
 */
export const start = (progress: Ref.Ref<Progress>, mode: ProgressMode) =>
  Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    let importStartedAt: number | undefined
    let lastPhase: Progress["phase"] | undefined
    let lastLineAt = startedAt
    const draw = (force: boolean) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const p = yield* Ref.get(progress)
        if (p.phase === "importing" && importStartedAt === undefined) importStartedAt = now
        const elapsed = now - (importStartedAt ?? startedAt)
        if (mode === "tty") {
          process.stderr.write(`\r\x1b[2K${describe(p, elapsed, 30)}`)
          return
        }
        if (!force && p.phase === lastPhase && now - lastLineAt < 5_000) return
        lastPhase = p.phase
        lastLineAt = now
        process.stderr.write(
          mode === "json"
            ? `${JSON.stringify({ type: "progress", elapsedSeconds: (now - startedAt) / 1000, ...p })}\n`
            : `tidemark: ${describe(p, elapsed)}\n`
        )
      })
    const every = mode === "tty" ? Duration.millis(200) : Duration.millis(250)
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(draw(false), Effect.sleep(every))))
    // The last state, once more, when the work ends (the bar is cleared instead).
    yield* Effect.addFinalizer(() =>
      mode === "tty" ? Effect.sync(() => process.stderr.write("\r\x1b[2K")) : draw(true)
    )
  })
