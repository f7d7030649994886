/**
 * Flags whose values are checked when the command line is parsed: a bad value
 * is a usage error (exit 2) before anything starts — before the embedded
 * server, before a connection.
 */
import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Duration, Effect, Option } from "effect"
import { formatDuration } from "../util/humanDuration.js"

const invalid = (text: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(text)))

/** "90s", "5m", "1.5h", "250ms"; a bare number is seconds. */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?$/.exec(text.trim())
  if (match === null) return Option.none()
  const value = Number(match[1])
  switch (match[2] ?? "s") {
    case "ms":
      return Option.some(Duration.millis(value))
    case "m":
    case "min":
      return Option.some(Duration.minutes(value))
    case "h":
      return Option.some(Duration.hours(value))
    default:
      return Option.some(Duration.seconds(value))
  }
}

/** An optional duration flag of at least `min`. */
export const duration = (name: string, description: string, min: Duration.DurationInput = Duration.zero) => {
  const least = Duration.decode(min)
  return Options.text(name).pipe(
    Options.withDescription(description),
    Options.mapEffect((text) =>
      Option.match(parseDuration(text), {
        onNone: () => invalid(`--${name} ${text} is not a duration: use e.g. 250ms, 90s, 5m or 1h`),
        onSome: (parsed) =>
          Duration.lessThan(parsed, least)
            ? invalid(`--${name} ${text} is too short: at least ${formatDuration(least)}`)
            : Effect.succeed(parsed)
      })
    ),
    Options.optional
  )
}

/** An integer flag within [min, max]. */
export const integerIn = (name: string, description: string, range: { readonly min: number; readonly max: number }) =>
  Options.integer(name).pipe(
    Options.withDescription(description),
    Options.mapEffect((n) =>
      n >= range.min && n <= range.max
        ? Effect.succeed(n)
        : invalid(`--${name} ${n} is out of range: use ${range.min} to ${range.max}`)
    )
  )
