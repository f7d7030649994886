-- What a maintenance kind has to do, found through an index of its own whose predicate the
-- planner can estimate. The one index of 0008 (`tsv IS NULL OR links_version IS DISTINCT
-- FROM version`) was estimated to hold every document (a comparison of two columns has no
-- statistics), so after 10 of 100,000 notes changed the search payment scanned the whole
-- table (~0.3 s) to find them.
--
-- A document's links are owed while `links_version` is null: a write of new content clears
-- it (as it clears `tsv`), the links payment sets it to the version it read.
UPDATE tidemark.documents SET links_version = NULL WHERE links_version <> version;
DROP INDEX tidemark.documents_derived_due;
CREATE INDEX documents_search_due ON tidemark.documents (source_id, key) WHERE tsv IS NULL;
CREATE INDEX documents_links_due ON tidemark.documents (source_id, key) WHERE links_version IS NULL;
