-- The core schema (DESIGN §3). Everything lives in the `tidemark` schema.
-- Times are the database clock's (timestamptz, now()), never the client's.

CREATE TABLE tidemark.sources (
  id          text PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('dir', 'git', 'jsonl')),
  root        text NOT NULL,
  options     jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- How far the source is synced (a commit, per-file offsets...); NULL before the first sync.
  watermark   jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One resumable attempt to bring a source from `base` to `target`.
CREATE TABLE tidemark.ops (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source_id      text NOT NULL REFERENCES tidemark.sources (id) ON DELETE CASCADE,
  base           jsonb,
  target         jsonb NOT NULL,
  status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'abandoned')),
  fencing_token  bigint NOT NULL,
  restarts       integer NOT NULL DEFAULT 0,
  banked         bigint NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  completed_at   timestamptz
);
CREATE UNIQUE INDEX ops_one_open_per_source ON tidemark.ops (source_id) WHERE status = 'open';

-- Banked items: append-only, one row per item, written O(delta) per flush.
CREATE TABLE tidemark.op_items (
  op_id      bigint NOT NULL REFERENCES tidemark.ops (id) ON DELETE CASCADE,
  key        text NOT NULL,
  version    text NOT NULL,
  banked_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (op_id, key)
);

-- Lease rows. Tokens come from one sequence, so they keep increasing even
-- when a row is released (deleted) and granted again: a stale holder's token
-- can never equal a later holder's.
CREATE SEQUENCE tidemark.lock_token_seq;
CREATE TABLE tidemark.locks (
  name          text PRIMARY KEY,
  holder        text NOT NULL,
  host          text NOT NULL,
  pid           integer NOT NULL,
  token         bigint NOT NULL,
  acquired_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at  timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL
);

-- Quarantined items: retried by every later sync until they import.
CREATE TABLE tidemark.item_errors (
  source_id  text NOT NULL REFERENCES tidemark.sources (id) ON DELETE CASCADE,
  key        text NOT NULL,
  version    text,
  error      text NOT NULL,
  attempts   integer NOT NULL DEFAULT 1,
  first_at   timestamptz NOT NULL DEFAULT now(),
  last_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_id, key)
);

-- The default sink. `tsv` is derived data, filled by deferred maintenance,
-- never in the write path.
CREATE TABLE tidemark.documents (
  source_id    text NOT NULL REFERENCES tidemark.sources (id) ON DELETE CASCADE,
  key          text NOT NULL,
  version      text NOT NULL,
  size         bigint NOT NULL,
  mtime        timestamptz,
  content      text NOT NULL,
  frontmatter  jsonb,
  title        text,
  tsv          tsvector,
  imported_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_id, key)
);
