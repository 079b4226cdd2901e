// Package filestore is the embedded, durable event store engine: the
// default backend of eventstore.
//
//	b, err := filestore.Open("/var/lib/fjord/events", nil)
//	if err != nil { ... }
//	s := eventstore.New(b, nil)
//	defer s.Close()
//
// # Design
//
// The log is the source of truth. Every event is one frame in a segment
// file: [u32 length][u32 CRC-32C][payload]; the payload holds a flags byte
// (one bit marks the last frame of a commit), the position, the commit time,
// the stream, version, event ID, type, content type, correlation and
// causation IDs, metadata and data. A commit (one Commit call) never spans
// two segments; a zero length marks the end of data in a segment. Segments
// are preallocated (64 MiB by default) and the directory is synced when one
// is created, so that the fdatasync of a commit has no size metadata to
// write.
//
// One committer goroutine owns the write path. It takes every queued
// Commit (up to MaxGroupEvents / MaxGroupBytes), and for each in order
// resolves idempotency (driver.MatchDuplicate, against the event-ID index
// and the events earlier in the same group; IDs the Store generated are not
// looked up), checks expected versions, assigns positions and encodes
// frames into one buffer, which it writes with one write. A syncer
// goroutine then makes the group durable with one fdatasync, applies its
// index batch, advances the head and answers every request of the group.
// The two overlap: the committer prepares and writes group N+1 while the
// syncer waits for group N's fdatasync, and checks group N+1 against group
// N's stream versions and IDs. Requests are answered only after their group
// and every earlier one are durable, so neither a success, a duplicate nor a
// conflict is ever reported on the strength of data that could still be
// lost; a failed write or sync stops the store from accepting commits. A
// request that fails (a conflict) does not affect the others of its group.
//
// Indexes are derived from the log and kept in Pebble: stream (stream,
// version), stream meta, event ID, category (category, position), event
// type (type, position), a sparse position index (the first frame of each
// commit group and every 128th position) and an "indexed through" mark written in the same batch.
// Pebble runs without its write-ahead log: what it loses in a crash is
// re-indexed from the log, from the mark to the end, on Open.
//
// Reads of $all scan the log from the sparse position index with large
// sequential reads; Category and EventTypes filters read their index (the
// rest of the filter is checked on the record); a StreamPrefix filter
// alone scans the log. Every frame read is checked against its CRC: a bad
// one yields a *driver.CorruptionError naming the file and offset, never
// data. No read goes past the head it captured when it started.
//
// # Durability contract
//
// When Commit returns without error the events are on disk (fdatasync
// completed), unless Options.NoSync is set. A commit is atomic: after a
// crash, Open truncates a torn tail (an invalid frame followed only by
// zeros, or frames after the last end-of-commit flag) to the last complete
// commit, so a commit is visible whole or not at all; nothing beyond the
// last complete commit is ever served. Corrupt data followed by valid data,
// or in a segment followed by non-empty segments, makes Open fail with a
// *driver.CorruptionError. Idempotency is durable: retrying a committed
// batch returns its original result, also after reopening.
//
// Torn-tail detection assumes the file system persists the bytes of one
// write in order up to the failure point (as ext4 and xfs do for appends
// within a page-cache write-back); a crash that persists later sectors of
// an unsynced write but not earlier ones is reported as corruption.
//
// # Files
//
//	dir/LOCK                      flock held by the open Store (one per directory)
//	dir/log/00000000000000000001.seg  segments, named by their first position
//	dir/index/                    Pebble database of the derived indexes
package filestore
