-- The two tables every sync writes a row per item into, made cheaper to write
-- (measured with scripts/bench/sync.mjs; figures in BENCHMARKS.md).
--
-- Their foreign keys cost a row-lock check per inserted row: about 1 s of server
-- CPU per 100,000 documents and 0.7 s per 100,000 banked items, about a quarter
-- of what the server spent on a first import. Neither guards anything the program can
-- get wrong: documents are written only under the source's lease, after the
-- source row is ensured, and banked items only into the open op of that lease;
-- nothing ever deletes a source or an op, so the cascades never fired.
ALTER TABLE tidemark.documents DROP CONSTRAINT documents_source_id_fkey;
ALTER TABLE tidemark.op_items DROP CONSTRAINT op_items_op_id_fkey;

-- One index instead of two over (source_id, key): the primary key carries the
-- source's version, so plan-time lookups stay index-only scans.
ALTER TABLE tidemark.documents
  DROP CONSTRAINT documents_pkey,
  ADD CONSTRAINT documents_pkey PRIMARY KEY (source_id, key) INCLUDE (source_version);
DROP INDEX tidemark.documents_source_version;
