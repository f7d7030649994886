/**
 * `tidemark source …`: managing one source. `source remove NAME [--yes]`
 * deletes a source and everything tidemark keeps of it, in one transaction,
 * under both of its leases (`sync:NAME`, `maintain:NAME`), taken for the
 * deletion: a sync or a payer that holds one makes it refuse, and nothing can
 * start meanwhile. Releasing them afterwards deletes the lease rows too.
 * Without `--yes` it says what it would delete and asks (on a terminal only).
 * A source recorded for the fleet is forgotten too, with its schedule.
 */
import { Args, Command, Options, Prompt } from "@effect/cli"
import { Console, Data, Effect, Layer, Option } from "effect"
import * as LeaseLock from "../../lock/LeaseLock.js"
import type { LockBusy } from "../../lock/errors.js"
import * as PgLeaseStore from "../../lock/PgLeaseStore.js"
import { OpsStore, type SourceContents } from "../../ops/OpsStore.js"
import * as PgOpsStore from "../../ops/PgOpsStore.js"
import { formatDuration } from "../../util/humanDuration.js"
import { dbOptions, withDatabase } from "../DbOptions.js"
import { UsageError } from "../UsageError.js"
import { addCommand, listCommand } from "../fleet/sourceAdd.js"
import * as Boss from "../../fleet/Boss.js"
import * as PgSourceRegistry from "../../fleet/PgSourceRegistry.js"
import { SourceRegistry } from "../../fleet/SourceRegistry.js"

const storesLayer = Layer.mergeAll(
  LeaseLock.layer.pipe(Layer.provide(PgLeaseStore.layer)),
  PgOpsStore.layer,
  PgSourceRegistry.layer
)

/** A recorded source's schedule goes with it (pg-boss is started only for a recorded one). */
const unschedule = (name: string) =>
  Effect.flatMap(Boss.Boss, (boss) =>
    Boss.attempt("removing the schedule", () => boss.unschedule(Boss.queues.sync, name))
  ).pipe(Effect.provide(Boss.layer({ role: "client" })))

/** A sync or a payer holds one of the source's leases: it is not removed. */
export class SourceBusy extends Data.TaggedError("SourceBusy")<{
  readonly sourceId: string
  readonly busy: LockBusy
}> {
  private get syncing() {
    return this.busy.name.startsWith("sync:")
  }
  override get message() {
    const who = `pid ${this.busy.pid} on ${this.busy.host}, for ${formatDuration(this.busy.ageMillis)}`
    return this.syncing
      ? `source ${this.sourceId} is being synced (${who}; lease ${this.busy.name}): not removed`
      : `the maintenance of source ${this.sourceId} is being paid (${who}; lease ${this.busy.name}): not removed`
  }
  get hint() {
    return this.syncing
      ? "let the sync finish (or stop it), then rerun; `tidemark lock list` shows the leases"
      : "a payer stops on its own when it has paid; rerun in a moment (`tidemark lock list` shows the leases)"
  }
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

/** What the counts say, the empty ones left out. */
export const describeContents = (c: SourceContents): string => {
  const parts = [
    c.documents > 0 ? plural(c.documents, "document") : undefined,
    c.entries > 0 ? plural(c.entries, "JSONL entry", "JSONL entries") : undefined,
    c.jsonlFiles > 0 ? plural(c.jsonlFiles, "JSONL file checkpoint") : undefined,
    c.ops > 0 ? plural(c.ops, "op") : undefined,
    c.bankedItems > 0 ? plural(c.bankedItems, "banked item") : undefined,
    c.itemErrors > 0 ? plural(c.itemErrors, "item error") : undefined,
    c.runState > 0 ? "its saved progress" : undefined,
    c.maintenanceDebt > 0 ? plural(c.maintenanceDebt, "maintenance debt row") : undefined,
    c.links > 0 ? plural(c.links, "link row") : undefined
  ].filter((p) => p !== undefined)
  return parts.length === 0 ? "nothing but the source itself" : parts.join(", ")
}

/** A sink of an embedding program keeps its items in tables of its own, which are not tidemark's to delete. */
const sinkNote = (c: SourceContents) =>
  c.sink === "documents" || c.sink === "entries"
    ? []
    : [`  its items in the ${c.sink} sink are that sink's own: they stay`]

const confirmed = (sourceId: string) =>
  Prompt.confirm({ message: `Delete source ${sourceId} and all of the above?`, initial: false }).pipe(
    Effect.catchTag("QuitException", () => Effect.succeed(false))
  )

interface RemoveFlags {
  readonly name: string
  readonly yes: boolean
  readonly json: boolean
}

const remove = Effect.fn("source.remove")(function* (flags: RemoveFlags) {
  const ops = yield* OpsStore
  const lock = yield* LeaseLock.LeaseLock
  const name = flags.name
  // The leases first: nothing else but them is touched while a sync or payer may be writing
  // (an unknown name takes and releases its two lease rows, and is said then).
  const underLeases = lock.withLease(`sync:${name}`, (sync) =>
    lock.withLease(`maintain:${name}`, (pay) =>
      Effect.gen(function* () {
        if (!flags.yes) {
          const recorded = yield* (yield* SourceRegistry).get(name)
          const contents = yield* ops.contentsOf(name).pipe(
            // Recorded for the fleet, never synced: only the record and its schedule would go.
            Effect.catchTag("UnknownSource", (unknown) =>
              Option.isSome(recorded) ? Effect.succeed(null) : Effect.fail(unknown)
            )
          )
          yield* Console.log(
            contents === null
              ? `source ${name} (recorded for the fleet, never synced): would forget it and its schedule`
              : [
                  `source ${name} (${contents.kind} ${contents.root}): would delete ${describeContents(contents)}`,
                  ...sinkNote(contents)
                ].join("\n")
          )
          if (process.stdin.isTTY !== true) {
            return yield* new UsageError({
              message: `refusing to remove source ${name} without --yes (not on a terminal, so it cannot ask)`,
              hint: `add --yes: tidemark source remove ${name} --yes`
            })
          }
          if (!(yield* confirmed(name))) {
            yield* Console.log("nothing deleted")
            return undefined
          }
        }
        const forgotten = yield* (yield* SourceRegistry).remove(name)
        if (forgotten) yield* unschedule(name)
        return yield* ops.removeSource(name, Effect.zipRight(sync.fence, pay.fence)).pipe(
          // Recorded for the fleet but never synced: there was nothing else to delete.
          Effect.catchTag("UnknownSource", (unknown) => (forgotten ? Effect.succeed(null) : Effect.fail(unknown)))
        )
      })
    )
  )
  const removed = yield* underLeases.pipe(
    Effect.catchTag("LockBusy", (busy) => Effect.fail(new SourceBusy({ sourceId: name, busy })))
  )
  if (removed === undefined) return
  if (removed === null) {
    return yield* Console.log(
      flags.json
        ? JSON.stringify({ removed: name, deleted: null })
        : `removed recorded source ${name} and its schedule (it was never synced: nothing else to delete)`
    )
  }
  yield* Console.log(
    flags.json
      ? JSON.stringify({ removed: name, deleted: removed })
      : [
          `removed source ${name} (${removed.kind} ${removed.root}): deleted ${describeContents(removed)}; its leases released`,
          ...sinkNote(removed)
        ].join("\n")
  )
})

const removeCommand = Command.make(
  "remove",
  {
    ...dbOptions,
    name: Args.text({ name: "NAME" }).pipe(Args.withDescription("The source (see `tidemark sources`).")),
    yes: Options.boolean("yes").pipe(
      Options.withDescription("Delete without asking (required when not on a terminal).")
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print what was deleted as JSON."))
  },
  (flags) =>
    remove(flags).pipe(
      Effect.provide(storesLayer),
      // No payer is started for debt this command is about to delete (it would hold maintain:NAME).
      withDatabase(flags, { scheduleMaintenance: false })
    )
).pipe(
  Command.withDescription(
    "Delete a source and everything of it (documents, entries, ops, errors, state, debt, links, leases); refuses while it is being synced."
  )
)

/** Subcommands on one source: recording it for the fleet, listing the recorded ones, removing one. */
export const sourceCommand = Command.make("source").pipe(
  Command.withDescription("Manage sources: record one for the fleet's workers, list them, remove one."),
  Command.withSubcommands([addCommand, listCommand, removeCommand])
)
