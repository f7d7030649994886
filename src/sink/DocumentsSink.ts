/**
 * The default sink: `tidemark.documents`. One batch is one MainDb transaction:
 * the lease's fence first, then one `INSERT … SELECT FROM unnest(...)` for all
 * upserts, one DELETE for all deletions, and the batch's item errors. The
 * search vector is left NULL (derived later, off the write path).
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { MainDb, transaction } from "../db/Database.js"

export interface DocumentRow {
  readonly key: string
  readonly version: string
  readonly sourceVersion: string
  readonly size: number
  readonly mtime: Date | null
  readonly content: string
  readonly frontmatter: unknown
  readonly title: string
}

export interface ItemErrorRow {
  readonly key: string
  readonly version: string | null
  readonly error: string
}

export interface Batch {
  readonly upserts: ReadonlyArray<DocumentRow>
  readonly deletes: ReadonlyArray<string>
  readonly errors: ReadonlyArray<ItemErrorRow>
  /** Items whose recorded errors no longer apply (they are gone from the source). */
  readonly resolved?: ReadonlyArray<string>
}

export const writeBatch = <E>(sourceId: string, batch: Batch, fence: Effect.Effect<void, E>) =>
  Effect.flatMap(MainDb, ({ sql }) =>
    transaction(sql)(
      Effect.gen(function* () {
        yield* fence
        const { upserts, deletes, errors } = batch
        if (upserts.length > 0) {
          yield* sql`
            INSERT INTO tidemark.documents AS d
              (source_id, key, version, source_version, size, mtime, content, frontmatter, title, imported_at)
            SELECT ${sourceId}, k, v, sv, s, m, c, f::jsonb, t, now()
              FROM unnest(
                ${upserts.map((d) => d.key)}::text[], ${upserts.map((d) => d.version)}::text[],
                ${upserts.map((d) => d.sourceVersion)}::text[], ${upserts.map((d) => d.size)}::bigint[],
                ${upserts.map((d) => d.mtime?.toISOString() ?? null)}::timestamptz[], ${upserts.map((d) => d.content)}::text[],
                ${upserts.map((d) => (d.frontmatter === null ? null : JSON.stringify(d.frontmatter)))}::text[],
                ${upserts.map((d) => d.title)}::text[]
              ) AS u(k, v, sv, s, m, c, f, t)
            ON CONFLICT (source_id, key) DO UPDATE SET
              version = excluded.version, source_version = excluded.source_version, size = excluded.size,
              mtime = excluded.mtime, content = excluded.content, frontmatter = excluded.frontmatter,
              title = excluded.title, tsv = NULL, imported_at = excluded.imported_at`
        }
        if (deletes.length > 0) {
          yield* sql`DELETE FROM tidemark.documents WHERE source_id = ${sourceId} AND key = ANY(${deletes}::text[])`
        }
        const cleared = [...upserts.map((d) => d.key), ...deletes, ...(batch.resolved ?? [])]
        if (cleared.length > 0) {
          yield* sql`DELETE FROM tidemark.item_errors WHERE source_id = ${sourceId} AND key = ANY(${cleared}::text[])`
        }
        if (errors.length > 0) {
          yield* sql`
            INSERT INTO tidemark.item_errors AS e (source_id, key, version, error)
            SELECT ${sourceId}, k, v, r
              FROM unnest(${errors.map((e) => e.key)}::text[], ${errors.map((e) => e.version)}::text[],
                          ${errors.map((e) => e.error)}::text[]) AS u(k, v, r)
            ON CONFLICT (source_id, key) DO UPDATE SET
              version = excluded.version, error = excluded.error, attempts = e.attempts + 1, last_at = now()`
        }
      })
    )
  ) satisfies Effect.Effect<void, E | SqlError, MainDb>
