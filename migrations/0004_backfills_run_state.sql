-- Versioned backfills (DESIGN §7): a row per (step, algorithm version) whose repair
-- committed, written in the same transaction as the repair itself.
CREATE TABLE tidemark.backfill_state (
  step          text NOT NULL,
  version       integer NOT NULL,
  completed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (step, version)
);

-- The volatile progress of each source's sync (DESIGN §7), flushed by the running sync
-- every 30 s when it changed. A row exists only once a flush succeeded (the "ever
-- flushed" marker); each jsonb group is decoded on its own when restored.
CREATE TABLE tidemark.run_state (
  source_id   text PRIMARY KEY REFERENCES tidemark.sources (id) ON DELETE CASCADE,
  identity    jsonb NOT NULL,
  counts      jsonb NOT NULL,
  rate        jsonb NOT NULL,
  flushed_at  timestamptz NOT NULL
);
