/**
 * Durations as people read them in messages: "350 ms", "3.5 s", "2 min 5 s",
 * "1 h 3 min". Effect's own `Duration.format` writes every unit down to the
 * nanosecond ("18ms 733000ns"), which is for logs of machines.
 */
import { Duration } from "effect"

export const formatDuration = (input: Duration.DurationInput): string => {
  const duration = Duration.decode(input)
  if (!Duration.isFinite(duration)) return "forever"
  const millis = Duration.toMillis(duration)
  if (millis < 1000) return `${Math.round(millis)} ms`
  const seconds = millis / 1000
  if (seconds < 10) return `${(Math.round(seconds * 10) / 10).toString()} s`
  if (seconds < 59.5) return `${Math.round(seconds)} s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) {
    const rest = Math.round(seconds - minutes * 60)
    return rest === 0 ? `${minutes} min` : `${minutes} min ${rest} s`
  }
  const hours = Math.floor(minutes / 60)
  const restMinutes = minutes - hours * 60
  return restMinutes === 0 ? `${hours} h` : `${hours} h ${restMinutes} min`
}
