/**
 * Log lines for people: on stderr (stdout stays clean for `--json`), prefixed
 * `tidemark:`, with secrets scrubbed.
 */
import { Layer, Logger, LogLevel } from "effect"
import { scrubSecrets } from "./redact.js"

const render = (message: unknown): string =>
  Array.isArray(message)
    ? message.map((part) => render(part)).join(" ")
    : typeof message === "string"
      ? message
      : String(message)

const stderrLogger = Logger.make(({ logLevel, message }) => {
  const level =
    LogLevel.lessThan(logLevel, LogLevel.Warning) && logLevel !== LogLevel.Debug
      ? ""
      : `${logLevel.label.toLowerCase()}: `
  process.stderr.write(`tidemark: ${level}${scrubSecrets(render(message))}\n`)
})

export const layer = (minimum: LogLevel.LogLevel = LogLevel.Info) =>
  Layer.merge(Logger.replace(Logger.defaultLogger, stderrLogger), Logger.minimumLogLevel(minimum))
