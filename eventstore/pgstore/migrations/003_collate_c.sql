-- Version 3: stream names, categories and event types compare byte by byte
-- (COLLATE "C"), as the event store compares them, so that writing their
-- index entries does not call the database's locale collation (about 5%
-- more appends per second). Rebuilds the indexes on those columns.
ALTER TABLE {{schema}}.events
	ALTER COLUMN stream TYPE text COLLATE "C",
	ALTER COLUMN category TYPE text COLLATE "C",
	ALTER COLUMN type TYPE text COLLATE "C";
