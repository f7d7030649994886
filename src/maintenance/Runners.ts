/**
 * What paying a kind of debt does, for one source: found from the data (the
 * documents whose search vector or links are missing or older than their
 * content), done in batches that commit as they go, so a payer killed midway
 * keeps what it did and the next one continues. Returns how many items it did.
 */
import { Context, type Effect } from "effect"
import type { StoreError } from "../db/StoreError.js"
import type { Kind } from "./Debt.js"

export interface RunnersShape {
  readonly run: (
    sourceId: string,
    kind: Kind,
    done: (items: number) => Effect.Effect<void>
  ) => Effect.Effect<number, StoreError>
}

export class Runners extends Context.Tag("tidemark/MaintenanceRunners")<Runners, RunnersShape>() {}
