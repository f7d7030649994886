-- The JSONL source (append-only logs): one row per file stream with its checkpoint, one
-- row per entry. The store is lossless: an entry dropped from its file stays, marked no
-- longer present; a stream whose file is gone stays, marked gone (`--mirror` deletes it).
--
-- A stream is a file's sequence of entries, recognised across renames by its fingerprint
-- (the first complete line's hash and length) and its anchor, not by its path alone.
CREATE TABLE tidemark.jsonl_files (
  source_id        text NOT NULL,
  stream           bigint GENERATED ALWAYS AS IDENTITY,
  -- Where the stream was last seen (a rename moves it), relative to the source's root.
  path             text NOT NULL,
  gone             boolean NOT NULL DEFAULT false,
  fingerprint      text,
  -- Hints only: a rename keeps them, a copy does not.
  device           bigint,
  inode            bigint,
  size             bigint NOT NULL DEFAULT 0,
  mtime_us         bigint NOT NULL DEFAULT 0,
  -- The file changed within the mtime tick of its reading: size and mtime are not trusted.
  racy             boolean NOT NULL DEFAULT false,
  -- Everything before this byte offset is stored (or recorded as an error), in `lines` lines.
  processed        bigint NOT NULL DEFAULT 0,
  lines            bigint NOT NULL DEFAULT 0,
  -- The last message entry before `processed` (the last entry, in a file with no messages).
  anchor_offset    bigint,
  anchor_length    integer,
  anchor_hash      text,
  anchor_position  bigint,
  -- The hashes of the entries after the anchor (metadata, typically), in order: a tail sync
  -- checks them as it passes, without reading them back from the database.
  tail_hashes      text[] NOT NULL DEFAULT '{}',
  -- The next positional identity (entries without --id-field are numbered in arrival order).
  next_seq         bigint NOT NULL DEFAULT 0,
  -- Entries a reconcile found new but did not import yet (the flood cap), and the cap per pass.
  backlog          bigint NOT NULL DEFAULT 0,
  backlog_cap      bigint,
  -- The last line had no newline yet: a write in progress, left for the next sync.
  pending_tail     boolean NOT NULL DEFAULT false,
  -- How the last sync went through it: unchanged, tail, reconcile, new.
  last_path        text,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_id, stream)
);
CREATE INDEX jsonl_files_path ON tidemark.jsonl_files (source_id, path);

CREATE TABLE tidemark.entries (
  source_id    text NOT NULL,
  stream       bigint NOT NULL,
  -- The --id-field's value, or the entry's number in its stream's arrival order.
  identity     text NOT NULL,
  -- Line number (from 0) and byte offset in the file, as of the last sync that saw it.
  position     bigint NOT NULL,
  byte_offset  bigint NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('message', 'metadata')),
  role         text,
  entry        jsonb NOT NULL,
  -- sha256 of the raw line, without its newline.
  line_hash    text NOT NULL,
  present      boolean NOT NULL DEFAULT true,
  imported_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_id, stream, identity)
);

-- Entries with the path of their file, for people and queries.
CREATE VIEW tidemark.jsonl_entries AS
  SELECT e.source_id, f.path AS file, f.gone AS file_gone, e.stream, e.identity, e.position, e.kind, e.role,
         e.entry, e.line_hash, e.present, e.imported_at
    FROM tidemark.entries e JOIN tidemark.jsonl_files f USING (source_id, stream);
