/** `tidemark search QUERY`: ranked results with snippets, and how far behind the index is. */
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import * as Search from "../../maintenance/Search.js"
import { dbOptions, withDatabase } from "../DbOptions.js"
import * as Flags from "../flags.js"

export const searchCommand = Command.make(
  "search",
  {
    ...dbOptions,
    query: Args.text({ name: "QUERY" }).pipe(
      Args.withDescription('Web-search syntax: words, "a phrase", -excluded, this or that.')
    ),
    source: Options.text("source").pipe(Options.withDescription("Only this source."), Options.optional),
    limit: Flags.integerIn("limit", "Results at most (default 10).", { min: 1, max: 1000 }).pipe(
      Options.withDefault(10)
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print the answer as JSON."))
  },
  (flags) =>
    Effect.gen(function* () {
      const answer = yield* Search.search(flags.query, {
        limit: flags.limit,
        ...Option.match(flags.source, { onNone: () => ({}), onSome: (sourceId) => ({ sourceId }) })
      })
      if (flags.json) return yield* Console.log(JSON.stringify(answer))
      if (answer.behind > 0) {
        yield* Console.error(
          `tidemark: the index is behind: ${answer.behind} documents not yet indexed (their maintenance is pending; \`tidemark maintain\` pays it now)`
        )
      }
      if (answer.results.length === 0) return yield* Console.log("no results")
      for (const r of answer.results) {
        yield* Console.log(
          `${r.key}${r.title ? ` — ${r.title}` : ""}  (${r.sourceId}, rank ${r.rank.toFixed(3)})\n  ${r.snippet}`
        )
      }
    }).pipe(withDatabase(flags))
).pipe(Command.withDescription("Search the synced documents (ranked, with snippets)."))
