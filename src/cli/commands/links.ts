/** `tidemark links KEY`: a document's links and backlinks; `--dangling`: a source's links that lead nowhere. */
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import * as LinkQueries from "../../maintenance/LinkQueries.js"
import { dbOptions, withDatabase } from "../DbOptions.js"
import { UsageError } from "../UsageError.js"

const line = (l: LinkQueries.LinkRow, side: "to" | "from") =>
  `  ${side === "to" ? (l.toKey ?? `${l.target} (dangling)`) : l.fromKey}   ${l.raw}`

export const linksCommand = Command.make(
  "links",
  {
    ...dbOptions,
    key: Args.text({ name: "KEY" }).pipe(
      Args.withDescription("The document (its key, as `status` shows it)."),
      Args.optional
    ),
    source: Options.text("source").pipe(
      Options.withDescription("The source (needed when several hold KEY)."),
      Options.optional
    ),
    dangling: Options.boolean("dangling").pipe(
      Options.withDescription("List the source's links whose target is not there.")
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print JSON."))
  },
  (flags) =>
    Effect.gen(function* () {
      const sourceFor = (key: string) =>
        Option.match(flags.source, {
          onSome: Effect.succeed,
          onNone: () =>
            Effect.flatMap(LinkQueries.sourcesWith(key), (sources) =>
              sources.length === 1
                ? Effect.succeed(sources[0]!)
                : Effect.fail(
                    new UsageError({
                      message: sources.length === 0 ? `no document ${key}` : `${sources.length} sources hold ${key}`,
                      hint:
                        sources.length === 0
                          ? "check the key with `tidemark status`"
                          : `pick one with --source (${sources.join(", ")})`
                    })
                  )
            )
        })
      if (flags.dangling) {
        const sourceId = yield* Option.match(flags.source, {
          onSome: Effect.succeed,
          onNone: () =>
            Option.match(flags.key, {
              onSome: sourceFor,
              onNone: () =>
                Effect.fail(new UsageError({ message: "--dangling needs a source", hint: "add --source NAME" }))
            })
        })
        const rows = yield* LinkQueries.dangling(sourceId)
        return yield* Console.log(
          flags.json
            ? JSON.stringify(rows)
            : rows.length === 0
              ? "no dangling links"
              : rows.map((l) => `${l.fromKey}   ${l.raw}   (no ${l.target})`).join("\n")
        )
      }
      if (Option.isNone(flags.key))
        return yield* new UsageError({
          message: "which document?",
          hint: "tidemark links KEY, or --dangling --source NAME"
        })
      const key = flags.key.value
      const sourceId = yield* sourceFor(key)
      const links = yield* LinkQueries.ofDocument(sourceId, key)
      if (flags.json) return yield* Console.log(JSON.stringify({ sourceId, key, ...links }))
      if (links.behind > 0) yield* Console.error(`tidemark: links are behind: ${links.behind} documents not yet linked`)
      yield* Console.log(
        [
          `${key} (${sourceId})`,
          `links to (${links.outgoing.length})`,
          ...links.outgoing.map((l) => line(l, "to")),
          `linked from (${links.backlinks.length})`,
          ...links.backlinks.map((l) => line(l, "from"))
        ].join("\n")
      )
    }).pipe(withDatabase(flags))
).pipe(Command.withDescription("A document's links and backlinks, or a source's dangling links."))
