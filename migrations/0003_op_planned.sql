-- How many items an op's plan found to do, so that progress reads "banked / planned".
ALTER TABLE tidemark.ops ADD COLUMN planned bigint;
