-- Which sink a source's items go to: the documents sink (tidemark.documents) unless an
-- embedding program syncs into a sink of its own. `tidemark status` counts the documents
-- of a documents source, and says where the items of any other one went.
ALTER TABLE tidemark.sources ADD COLUMN sink text NOT NULL DEFAULT 'documents';
