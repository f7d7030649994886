import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { dbOptions, withDatabase } from "../DbOptions.js"
import { statuses } from "../../status/StatusQuery.js"
import { asText } from "../status/render.js"

export const statusCommand = Command.make(
  "status",
  {
    ...dbOptions,
    json: Options.boolean("json").pipe(Options.withDescription("Print JSON.")),
    source: Args.text({ name: "SOURCE" }).pipe(
      Args.withDescription("Only this source (default: every source)."),
      Args.optional
    )
  },
  (flags) =>
    statuses(Option.getOrUndefined(flags.source)).pipe(
      Effect.flatMap((all) => Console.log(flags.json ? JSON.stringify(all) : asText(all))),
      withDatabase(flags)
    )
).pipe(
  Command.withDescription(
    "Per source (or one): documents and entries (exact counts, kept by the writes), last sync, the open op, item errors, who is syncing it now."
  )
)
