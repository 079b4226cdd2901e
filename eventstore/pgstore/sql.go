package pgstore

// statements are the store's SQL, with the schema filled in.
type statements struct {
	head, streamInfo                         string
	lock, lastRow, streamVersions, lookupIDs string
	insert, checkHead                        string
	readAllFwd, readAllBwd                   string
	readStreamFwd, readStreamBwd             string
}

// columns are the columns of a record, in the order scanRecord reads them.
const columns = "position, stream, version, id, type, content_type, data, metadata, correlation_id, causation_id, time"

func newStatements(q string) statements {
	ev := q + ".events"
	return statements{
		head: "SELECT coalesce(max(position), 0) FROM " + ev,
		streamInfo: `SELECT l.version, l.position, f.time, l.time
FROM (SELECT version, position, time FROM ` + ev + ` WHERE stream = $1 ORDER BY version DESC LIMIT 1) l,
     (SELECT time FROM ` + ev + ` WHERE stream = $1 AND version = 1) f`,
		lock:    "SELECT pg_advisory_xact_lock($1)",
		lastRow: "SELECT position, time FROM " + ev + " ORDER BY position DESC LIMIT 1",
		streamVersions: `SELECT s, coalesce((SELECT version FROM ` + ev + ` e WHERE e.stream = s ORDER BY version DESC LIMIT 1), 0)
FROM unnest($1::text[]) AS s`,
		lookupIDs: "SELECT id, stream, version, position FROM " + ev + " WHERE id = ANY($1::uuid[])",
		insert: `INSERT INTO ` + ev + ` (position, stream, version, category, id, type, content_type, data, metadata, correlation_id, causation_id, time)
SELECT u.*, $12::timestamptz FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::uuid[], $6::text[],
	$7::bytea[], $8::bytea[], $9::bytea[], $10::bytea[], $11::bytea[]) AS u`,
		checkHead:     "SELECT " + q + ".check_head($1, $2, $3)",
		readAllFwd:    "SELECT " + columns + " FROM " + ev + " WHERE position >= $1 AND position <= $2",
		readAllBwd:    "SELECT " + columns + " FROM " + ev + " WHERE position <= $1",
		readStreamFwd: "SELECT " + columns + " FROM " + ev + " WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3",
		readStreamBwd: "SELECT " + columns + " FROM " + ev + " WHERE stream = $1 AND version <= $2 ORDER BY version DESC LIMIT $3",
	}
}
