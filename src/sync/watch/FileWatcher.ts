/**
 * File-system notifications as a queue of changes, for the life of a scope:
 * `@parcel/watcher` (inotify on Linux, FSEvents on macOS; native, no polling).
 * A notification the OS dropped (a queue overflow) arrives as `Overflow`: the
 * watch rescans.
 */
import { createRequire } from "node:module"
import { Context, Data, Effect, Layer, Queue, type Scope } from "effect"

export type Change =
  | { readonly _tag: "Paths"; readonly paths: ReadonlyArray<string> }
  | { readonly _tag: "Overflow"; readonly reason: string }

export class WatchFailed extends Data.TaggedError("WatchFailed")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `cannot watch ${this.path}: ${this.reason}`
  }
  get hint() {
    return "on Linux, raise fs.inotify.max_user_watches if the folder is very large"
  }
}

export interface FileWatcherShape {
  /** Changes under `dir` (absolute paths), until the scope closes. `ignore`: globs or folder names. */
  readonly watch: (
    dir: string,
    options: { readonly ignore: ReadonlyArray<string> }
  ) => Effect.Effect<Queue.Dequeue<Change>, WatchFailed, Scope.Scope>
}

export class FileWatcher extends Context.Tag("tidemark/FileWatcher")<FileWatcher, FileWatcherShape>() {}

interface ParcelWatcher {
  subscribe(
    dir: string,
    callback: (error: Error | null, events: ReadonlyArray<{ readonly path: string }>) => void,
    options?: { readonly ignore?: ReadonlyArray<string> }
  ): Promise<{ unsubscribe(): Promise<void> }>
}

// Required, not imported: it is native, outside the CLI's bundle, and the bundle is CommonJS.
const requirePackage = createRequire(import.meta.url)

const reasonOf = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

export const layerParcel = Layer.sync(FileWatcher, () =>
  FileWatcher.of({
    watch: (dir, options) =>
      Effect.gen(function* () {
        const watcher = yield* Effect.try({
          try: () => requirePackage("@parcel/watcher") as ParcelWatcher,
          catch: (cause) => new WatchFailed({ path: dir, reason: `@parcel/watcher did not load: ${reasonOf(cause)}` })
        })
        const changes = yield* Effect.acquireRelease(Queue.unbounded<Change>(), Queue.shutdown)
        yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: () =>
              watcher.subscribe(
                dir,
                (error, events) => {
                  if (error !== null) Queue.unsafeOffer(changes, { _tag: "Overflow", reason: error.message })
                  else if (events.length > 0) {
                    Queue.unsafeOffer(changes, { _tag: "Paths", paths: events.map((event) => event.path) })
                  }
                },
                { ignore: options.ignore }
              ),
            catch: (cause) => new WatchFailed({ path: dir, reason: reasonOf(cause) })
          }),
          (subscription) => Effect.promise(() => subscription.unsubscribe()).pipe(Effect.ignore)
        )
        return changes
      })
  })
)
