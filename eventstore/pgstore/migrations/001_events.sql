-- Version 1: the events table (the schema name is filled in when applied).
--
-- position is assigned by the committer as head+1.. under an advisory lock,
-- so it is gapless and in commit order; it is not a sequence on purpose.
-- Content type, correlation and causation IDs are bytea because the event
-- store does not restrict their bytes (text cannot hold NUL or bad UTF-8).
CREATE TABLE {{schema}}.events (
	position       bigint      NOT NULL PRIMARY KEY,
	stream         text        NOT NULL,
	version        bigint      NOT NULL,
	category       text        NOT NULL,
	id             uuid        NOT NULL,
	type           text        NOT NULL,
	content_type   bytea       NOT NULL,
	data           bytea,
	metadata       bytea,
	correlation_id bytea       NOT NULL,
	causation_id   bytea       NOT NULL,
	time           timestamptz NOT NULL
);
CREATE UNIQUE INDEX events_stream_version ON {{schema}}.events (stream, version);
CREATE UNIQUE INDEX events_id ON {{schema}}.events (id);
CREATE INDEX events_category_position ON {{schema}}.events (category, position);
CREATE INDEX events_type_position ON {{schema}}.events (type, position);
