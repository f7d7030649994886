/**
 * Who started the running embedded server, recorded beside it (`server.json`).
 *
 * A command that finds no server starts one on its own and records
 * `{ by: "command" }`: the last such client to detach stops it. `tidemark db
 * start` records `{ by: "db start" }`: the server runs until `tidemark db
 * stop`. A server with no record, or a record of another postmaster (its pid
 * differs), was started by someone else — by hand, or by another tool — and no
 * tidemark command ever stops it.
 */
import * as fs from "node:fs"
import { Effect, Option, Schema } from "effect"
import type { EmbeddedPaths } from "./paths.js"

export const Owner = Schema.Struct({
  by: Schema.Literal("command", "db start"),
  /** The postmaster this record is about. */
  pid: Schema.Number,
  port: Schema.Number,
  /** Whether it listens on 127.0.0.1 (with a password) besides its socket. */
  tcp: Schema.Boolean
})
export type Owner = typeof Owner.Type

const decode = Schema.decodeUnknownOption(Schema.parseJson(Owner))

/** The record of the server running as `pid`; none when there is none, or it is another server's. */
export const read = (paths: EmbeddedPaths, pid: number): Effect.Effect<Option.Option<Owner>> =>
  Effect.sync(() => {
    if (!fs.existsSync(paths.ownerFile)) return Option.none()
    return Option.filter(decode(fs.readFileSync(paths.ownerFile, "utf8")), (owner) => owner.pid === pid)
  })

/** Written whole or not at all (rename), so a reader never sees half a record. */
export const write = (paths: EmbeddedPaths, owner: Owner): Effect.Effect<void> =>
  Effect.sync(() => {
    const scratch = `${paths.ownerFile}.${process.pid}`
    fs.writeFileSync(scratch, JSON.stringify(owner), { mode: 0o600 })
    fs.renameSync(scratch, paths.ownerFile)
  })

export const remove = (paths: EmbeddedPaths): Effect.Effect<void> =>
  Effect.sync(() => fs.rmSync(paths.ownerFile, { force: true }))
