/**
 * The status page (`static/status.html`): one HTML document with its script
 * inline, refreshing itself from `/api/status`. Read once, when the server
 * starts; it is a file of its own so that it can be read and edited as HTML.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { packageRoot } from "../packageRoot.js"

export const pagePath = path.join(packageRoot, "static", "status.html")

export const load = Effect.sync(() => fs.readFileSync(pagePath, "utf8"))
