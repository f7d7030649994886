/**
 * Keeps secrets out of everything tidemark prints: connection strings lose
 * their password, `password=` settings their value, and any secret known to
 * the process is masked wherever it appears.
 */
import { Redacted } from "effect"

const urlPassword = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@\s]*@/gi
const keywordPassword = /(password\s*=\s*)('[^']*'|\S+)/gi

export const scrubSecrets = (text: string, secrets: ReadonlyArray<Redacted.Redacted<string>> = []): string => {
  let scrubbed = text
  for (const secret of secrets) {
    const value = Redacted.value(secret)
    if (value !== "") scrubbed = scrubbed.split(value).join("<redacted>")
    try {
      const password = decodeURIComponent(new URL(value).password)
      if (password !== "") scrubbed = scrubbed.split(password).join("***")
    } catch {
      // not a URL: masked whole above
    }
  }
  return scrubbed.replace(urlPassword, "$1***@").replace(keywordPassword, "$1***")
}
