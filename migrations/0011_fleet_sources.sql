-- The fleet's recorded sources (`tidemark source add`): how a worker on any machine
-- syncs each one, and its schedule. Its history (ops, documents, state) lives under the
-- same name in tidemark.sources and the rest, once a first sync has run.
CREATE TABLE tidemark.fleet_sources (
  name        text PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('dir', 'git', 'jsonl')),
  -- A path every worker sees, or (git) a URL every worker mirrors.
  location    text NOT NULL,
  spec        jsonb NOT NULL,
  -- A cron expression (pg-boss runs it); NULL: synced when enqueued only.
  schedule    text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
