-- Per-source counts, kept by the writes themselves: `tidemark status` and `tidemark sources`
-- read them instead of a count(*) that grows with the source. Each write that adds or
-- removes documents (the documents sink) or changes which entries are present (the entries
-- store) moves its source's count in the same transaction, after the lease's fence, so a
-- count can never disagree with the rows it counts. Filled once here from the rows stored.
--
-- `documents`: rows of tidemark.documents of the source (a source of another sink keeps 0:
-- that sink counts its own). `entries`: entries of a JSONL source present in their files.
ALTER TABLE tidemark.sources
  ADD COLUMN documents bigint NOT NULL DEFAULT 0,
  ADD COLUMN entries bigint NOT NULL DEFAULT 0;

UPDATE tidemark.sources s
   SET documents = (SELECT count(*) FROM tidemark.documents d WHERE d.source_id = s.id),
       entries = (SELECT count(*) FROM tidemark.entries e WHERE e.source_id = s.id AND e.present);
