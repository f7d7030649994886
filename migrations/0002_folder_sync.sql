-- What the folder source needs to recognise an unchanged file without reading it.
-- `source_version` is the source's own cheap version of the item (for a folder:
-- size and mtime; for git: the blob id), compared at plan time. `version`
-- stays the content hash.
ALTER TABLE tidemark.documents ADD COLUMN source_version text;

-- Keys are compared with `= ANY` per batch and deleted by source.
CREATE INDEX documents_source_version ON tidemark.documents (source_id, key) INCLUDE (source_version);
