/**
 * tidemark's own backfills (`documents.title`), in the registry that the CLI
 * and `Tidemark.layerPg` run at every start, after the migrations. An
 * embedding program adds its own beside them (`Tidemark.layerPgWith`).
 */
import { Layer } from "effect"
import { titleBackfill } from "../sink/titleBackfill.js"
import * as Backfills from "./Backfills.js"

export const ownBackfills: Layer.Layer<Backfills.Backfills> = Backfills.register(titleBackfill).pipe(
  Layer.provideMerge(Backfills.Backfills.Default)
)
