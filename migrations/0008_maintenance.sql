-- Deferred maintenance (DESIGN §7): durable debt, one row per (source, kind), and what its
-- payment derives: the search vector, the link graph.
--
-- A change bumps `revision` in the same transaction as the change; a payer covers the
-- revision it saw when it began, and `paid_revision` records it. What a kind has to do is
-- found from the data (documents whose search vector is missing, whose links are older
-- than their content), so paying is O(changed).
CREATE TABLE tidemark.maintenance_debt (
  source_id        text NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('search', 'links', 'analyze', 'purge')),
  revision         bigint NOT NULL DEFAULT 1,
  paid_revision    bigint NOT NULL DEFAULT 0,
  -- Since when it has been owed; null once paid.
  pending_since    timestamptz,
  -- Failed runs since the last success, and when the next may start (backoff).
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  last_error       text,
  -- Who is paying it now (a lease holder), and since when.
  payer            text,
  paying_since     timestamptz,
  runs             bigint NOT NULL DEFAULT 0,
  reruns           bigint NOT NULL DEFAULT 0,
  -- Rows changed since the kind last did its work, counted by the changes themselves (the
  -- analyze kind refreshes statistics past a threshold; the server's own counters lag).
  changed          bigint NOT NULL DEFAULT 0,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_id, kind)
);

-- The version of the content the links were extracted from.
ALTER TABLE tidemark.documents ADD COLUMN links_version text;
-- The documents some derived data is missing for: a new or changed document is in it until
-- both its search vector and its links are made (O(changed) to find, one index for both).
CREATE INDEX documents_derived_due ON tidemark.documents (source_id, key)
  WHERE tsv IS NULL OR links_version IS DISTINCT FROM version;
-- Search. Documents without a vector are not in it: an import adds nothing to this index.
CREATE INDEX documents_tsv ON tidemark.documents USING gin (tsv) WHERE tsv IS NOT NULL;

-- Links as written: a Markdown link's target path (relative to the source's root, anchor
-- stripped), or a wiki link's name. Resolved when read (the view below), so a target that
-- appears, goes or is renamed later is seen at once.
CREATE TABLE tidemark.link_refs (
  source_id  text NOT NULL,
  from_key   text NOT NULL,
  position   integer NOT NULL,
  kind       text NOT NULL CHECK (kind IN ('markdown', 'wiki')),
  raw        text NOT NULL,
  target     text NOT NULL,
  alias      text,
  PRIMARY KEY (source_id, from_key, position),
  -- A document that goes takes its links with it, in the same statement: nothing to purge.
  FOREIGN KEY (source_id, from_key) REFERENCES tidemark.documents (source_id, key) ON DELETE CASCADE
);
CREATE INDEX link_refs_target ON tidemark.link_refs (source_id, lower(target));
-- The names a wiki link may use for a document: its file name without extension, its title.
CREATE TABLE tidemark.link_names (
  source_id  text NOT NULL,
  name       text NOT NULL,
  key        text NOT NULL,
  PRIMARY KEY (source_id, name, key),
  FOREIGN KEY (source_id, key) REFERENCES tidemark.documents (source_id, key) ON DELETE CASCADE
);
CREATE INDEX link_names_key ON tidemark.link_names (source_id, key);

CREATE VIEW tidemark.links AS
  SELECT r.source_id, r.from_key, r.position, r.kind, r.raw, r.target, r.alias,
         t.key AS to_key, t.key IS NOT NULL AS resolved
    FROM tidemark.link_refs r
    LEFT JOIN LATERAL (
      SELECT candidate.key FROM (
        SELECT d.key, 1 AS rank FROM tidemark.documents d
         WHERE d.source_id = r.source_id AND d.key = r.target
        UNION ALL
        SELECT d.key, 2 FROM tidemark.documents d
         WHERE d.source_id = r.source_id AND d.key = r.target || '.md'
        UNION ALL
        SELECT n.key, 3 FROM tidemark.link_names n
         WHERE r.kind = 'wiki' AND n.source_id = r.source_id AND n.name = lower(r.target)
      ) candidate ORDER BY candidate.rank, length(candidate.key), candidate.key LIMIT 1
    ) t ON true;

-- The debt of what is stored already: every existing source owes its search vectors,
-- links and statistics (the next start pays them).
INSERT INTO tidemark.maintenance_debt (source_id, kind, pending_since)
  SELECT s.id, k.kind, now() FROM tidemark.sources s
   CROSS JOIN (VALUES ('search'), ('links'), ('analyze')) AS k(kind);
