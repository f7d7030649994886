/**
 * File-system notifications as a queue of changes, for the life of a scope:
 * `@parcel/watcher` (inotify on Linux, FSEvents on macOS; native, no polling).
 * A notification the OS dropped (a queue overflow) arrives as `Overflow`: the
 * watch rescans. The in-memory twin lets a test say what changed, and when.
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

/** Changes a test offers itself (`offer`); `watched` says what is being watched now. */
export class MemoryWatcher extends Context.Tag("tidemark/MemoryWatcher")<
  MemoryWatcher,
  { readonly offer: (change: Change) => Effect.Effect<void>; readonly watched: Effect.Effect<ReadonlyArray<string>> }
>() {}

export const layerMemory: Layer.Layer<FileWatcher | MemoryWatcher> = Layer.effectContext(
  Effect.gen(function* () {
    const queues = new Map<string, Queue.Queue<Change>>()
    const watcher = FileWatcher.of({
      watch: (dir) =>
        Effect.acquireRelease(
          Effect.tap(Queue.unbounded<Change>(), (queue) => Effect.sync(() => queues.set(dir, queue))),
          (queue) =>
            Effect.zipRight(
              Effect.sync(() => queues.delete(dir)),
              Queue.shutdown(queue)
            )
        )
    })
    const memory = MemoryWatcher.of({
      offer: (change) => Effect.forEach([...queues.values()], (queue) => Queue.offer(queue, change), { discard: true }),
      watched: Effect.sync(() => [...queues.keys()])
    })
    return Context.make(FileWatcher, watcher).pipe(Context.add(MemoryWatcher, memory))
  })
)
