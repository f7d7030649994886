/**
 * A cross-process mutex around starting and stopping one embedded server.
 *
 * The lock is a listening Unix socket. On Linux it lives in the abstract
 * namespace, which the kernel frees the instant its owner dies, so a SIGKILLed
 * holder can never leave a stale lock behind. Elsewhere it is a socket file; a
 * file nobody listens on (connect is refused) is a dead holder's and is removed.
 */
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as fs from "node:fs"
import { Data, Duration, Effect, Schedule, type Scope } from "effect"
import { formatDuration } from "../../util/humanDuration.js"

export class LifecycleLockTimeout extends Data.TaggedError("LifecycleLockTimeout")<{
  readonly home: string
  readonly waited: Duration.Duration
}> {
  override get message() {
    return `another tidemark process kept the embedded server's start/stop lock for ${formatDuration(this.waited)} (home ${this.home})`
  }
}

class AddressInUse extends Data.TaggedError("AddressInUse") {}

const lockAddress = (lockKey: string): string =>
  process.platform === "linux" ? `\0tidemark-lifecycle-${lockKey}` : path.join(os.tmpdir(), `tidemark-${lockKey}.lock`)

const listen = (address: string): Effect.Effect<net.Server, AddressInUse | Error> =>
  Effect.async<net.Server, AddressInUse | Error>((resume) => {
    const server = net.createServer((socket) => socket.destroy())
    server.once("error", (error: NodeJS.ErrnoException) =>
      resume(error.code === "EADDRINUSE" ? Effect.fail(new AddressInUse()) : Effect.fail(error))
    )
    server.listen(address, () => {
      server.unref()
      resume(Effect.succeed(server))
    })
  })

/** A socket file whose owner died refuses connections; remove it so the next attempt can bind. */
const removeIfAbandoned = (address: string): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const probe = net.connect(address)
    probe.once("connect", () => {
      probe.destroy()
      resume(Effect.void)
    })
    probe.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNREFUSED") fs.rmSync(address, { force: true })
      resume(Effect.void)
    })
  })

const close = (server: net.Server): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    server.close(() => resume(Effect.void))
  })

/**
 * Holds the lifecycle lock of the server whose paths hash to `lockKey` for the
 * life of the scope. Waits (polling) while another process holds it.
 */
export const acquire = (options: {
  readonly home: string
  readonly lockKey: string
  readonly timeout?: Duration.DurationInput
}): Effect.Effect<void, LifecycleLockTimeout | Error, Scope.Scope> => {
  const address = lockAddress(options.lockKey)
  const timeout = Duration.decode(options.timeout ?? "2 minutes")
  const attempt = listen(address).pipe(
    Effect.tapError((error) =>
      error instanceof AddressInUse && !address.startsWith("\0") ? removeIfAbandoned(address) : Effect.void
    )
  )
  return Effect.acquireRelease(
    attempt.pipe(
      Effect.retry({ schedule: Schedule.spaced("25 millis"), while: (error) => error instanceof AddressInUse }),
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new LifecycleLockTimeout({ home: options.home, waited: timeout })
      }),
      Effect.catchIf(
        (error): error is AddressInUse => error instanceof AddressInUse,
        () => Effect.fail(new LifecycleLockTimeout({ home: options.home, waited: timeout }))
      )
    ),
    close
  ).pipe(Effect.asVoid)
}
