/**
 * Shows a running sync's progress: a bar with rate and ETA redrawn on a TTY,
 * a plain line every few seconds otherwise, JSON lines with `--json`. All on
 * stderr, so stdout carries only the result. `end` stops it before the result
 * is printed: the bar's line is cleared, plain and JSON output get their last
 * line (the counts the result gives).
 */
import { Clock, Duration, Effect, Fiber, FiberRef, Option, Ref } from "effect"
import { doneOf, type Progress, rateAndEta } from "../sync/Progress.js"
import { formatDuration } from "../util/humanDuration.js"

export type ProgressMode = "tty" | "plain" | "json"

export const modeFor = (json: boolean): ProgressMode => (json ? "json" : process.stderr.isTTY ? "tty" : "plain")

const etaText = (seconds: number) => (seconds < 1 ? "under 1 s" : formatDuration(Math.round(seconds) * 1000))

export const describe = (p: Progress, elapsedMillis: number, barWidth?: number): string => {
  if (p.phase === "planning" || p.phase === "starting") return `planning: ${p.seen} items listed, ${p.toImport} changed`
  const done = doneOf(p)
  const { perSecond, etaSeconds } = rateAndEta(done, p.toImport, elapsedMillis)
  if (p.listing) {
    // A first import whose listing goes on: how many there are is not known yet, so no bar or ETA.
    return `${p.phase} (still listing): ${done} of ${p.toImport} found so far, ${perSecond.toFixed(0)} items/s${p.failed > 0 ? `, ${p.failed} failed` : ""}`
  }
  const share = p.toImport === 0 ? 1 : Math.min(1, done / p.toImport)
  const bar = barWidth === undefined ? "" : `[${"#".repeat(Math.round(share * barWidth)).padEnd(barWidth, ".")}] `
  const eta = etaSeconds === null || p.phase !== "importing" ? "" : `, ETA ${etaText(etaSeconds)}`
  const extra = [
    p.failed > 0 ? `${p.failed} failed` : "",
    p.rechecked > 0 ? `${p.rechecked} re-checked unchanged` : "",
    p.deleted > 0 ? `${p.deleted} deleted` : ""
  ].filter(Boolean)
  return `${p.phase}: ${bar}${done}/${p.toImport} (${Math.floor(share * 100)}%), ${perSecond.toFixed(0)} items/s${eta}${extra.length > 0 ? `, ${extra.join(", ")}` : ""}`
}

/** A progress line as JSON: the progress itself, without its bookkeeping. */
const jsonLine = (p: Progress, elapsedSeconds: number) => {
  const { listingFailed: _, ...shown } = p
  return `${JSON.stringify({ type: "progress", elapsedSeconds, ...shown, done: doneOf(p) })}\n`
}

/** Ends the reporter this fiber started, if any (see `end`). */
const current = FiberRef.unsafeMake<Option.Option<Effect.Effect<void>>>(Option.none())

/**
 * Stops the reporter started by this fiber and ends its output: the TTY line
 * is cleared, plain and JSON output get their last line. Call it before
 * printing a result; without a reporter it does nothing.
 */
export const end: Effect.Effect<void> = Effect.flatMap(FiberRef.get(current), (stop) =>
  Option.getOrElse(stop, () => Effect.void)
)

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
    let ended = false
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
          mode === "json" ? jsonLine(p, (now - startedAt) / 1000) : `tidemark: ${describe(p, elapsed)}\n`
        )
      })
    const every = mode === "tty" ? Duration.millis(200) : Duration.millis(250)
    const drawing = yield* Effect.forkScoped(Effect.forever(Effect.zipRight(draw(false), Effect.sleep(every))))
    // The last state, once more, when the work ends (the bar is cleared instead).
    const stop = Effect.suspend(() => {
      if (ended) return Effect.void
      ended = true
      return Effect.zipRight(
        Fiber.interrupt(drawing),
        mode === "tty" ? Effect.sync(() => process.stderr.write("\r\x1b[2K")) : draw(true)
      )
    })
    yield* FiberRef.set(current, Option.some(stop))
    yield* Effect.addFinalizer(() => stop)
  })
