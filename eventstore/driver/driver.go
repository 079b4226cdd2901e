// Package driver defines the seam between eventstore.Store and a storage
// backend. It imports only the standard library.
//
// A backend stores records and enforces the few rules that must be decided
// atomically with a commit: expected versions, idempotency by event ID and
// the gapless global order. Everything else (validation, ID generation,
// size limits, subscriptions, retries, hooks) lives in eventstore.Store and
// is written once there.
//
// Versions are 1-based: the first event of a stream has version 1, and a
// stream with no events is at version 0. Positions are 1-based too: the first
// event ever committed has position 1, and position 0 means "before the first
// event".
package driver

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"
)

// Backend is what a storage engine implements. Implementations must be safe
// for concurrent use.
type Backend interface {
	// Commit appends the batch atomically: either every StreamAppend is
	// written with consecutive positions, or nothing is. It returns one
	// StreamCommitted per StreamAppend, in order.
	//
	// Before checking expected versions, Commit looks the batch's event IDs
	// up: when all of them were committed before by one earlier batch of the
	// same shape, Commit writes nothing and returns that batch's result with
	// Duplicate set (see MatchDuplicate). When only some were, it returns an
	// *IdempotencyError. A failed expected-version check returns a
	// *ConflictError.
	Commit(ctx context.Context, b *Batch) (Committed, error)

	// ReadStream returns a stream's records in version order (or reverse
	// order when q.Backwards), starting at q.From inclusive.
	ReadStream(ctx context.Context, q StreamQuery) iter.Seq2[Record, error]

	// ReadAll returns committed records in position order (or reverse
	// order), starting at q.From inclusive and never past q.Until, keeping
	// only records that match q.Filter.
	ReadAll(ctx context.Context, q AllQuery) iter.Seq2[Record, error]

	// StreamInfo describes a stream; ErrStreamNotFound when it has never
	// had an event.
	StreamInfo(ctx context.Context, stream string) (StreamInfo, error)

	// Head returns the position of the last committed record (0 when the
	// store is empty). Every record at or below Head is readable.
	Head(ctx context.Context) (uint64, error)

	// Close releases the backend. Calls after Close return ErrClosed.
	Close() error
}

// Watcher is implemented by backends that can tell when new records commit,
// so subscriptions need not poll.
type Watcher interface {
	// WaitHead blocks until the head is beyond after and returns the new
	// head, or returns ctx.Err() when ctx ends first.
	WaitHead(ctx context.Context, after uint64) (uint64, error)
}

// Event is an event to append.
type Event struct {
	ID            [16]byte
	Type          string
	ContentType   string
	Data          []byte
	Metadata      []byte
	CorrelationID string
	CausationID   string
	// GeneratedID says the store generated ID for this append (a UUIDv7):
	// it cannot have been committed before, so backends need not look it
	// up for idempotency. It is not stored.
	GeneratedID bool
}

// ExpectKind says which expected-version rule applies to a StreamAppend.
type ExpectKind uint8

// The expected-version rules.
const (
	ExpectAny      ExpectKind = iota // no check
	ExpectNoStream                   // the stream has no events
	ExpectExists                     // the stream has at least one event
	ExpectExact                      // the stream is exactly at Expected.Version
)

// Expected is an expected-version rule.
type Expected struct {
	Kind    ExpectKind
	Version uint64 // for ExpectExact
}

// Check reports whether a stream at version actual satisfies e.
func (e Expected) Check(actual uint64) bool {
	switch e.Kind {
	case ExpectNoStream:
		return actual == 0
	case ExpectExists:
		return actual > 0
	case ExpectExact:
		return actual == e.Version
	default:
		return true
	}
}

// StreamAppend is one stream's part of a Batch.
type StreamAppend struct {
	Stream   string
	Expected Expected
	Events   []Event
}

// Batch is one atomic commit. Store has validated it: stream names and event
// types are valid, event IDs are set and unique within the batch, each
// stream appears at most once, and every StreamAppend has events.
type Batch struct {
	Appends []StreamAppend
}

// StreamCommitted is the result of one StreamAppend.
type StreamCommitted struct {
	Version  uint64 // version of the stream's last event in the batch
	Position uint64 // position of the stream's last event in the batch
}

// Committed is the result of Commit.
type Committed struct {
	Streams   []StreamCommitted
	Duplicate bool // the batch had been committed before; nothing was written
}

// Record is a committed event.
type Record struct {
	Event
	Stream   string
	Version  uint64
	Position uint64
	Time     time.Time // commit time
}

// StreamQuery selects records of one stream.
type StreamQuery struct {
	Stream    string
	From      uint64 // first version to return; forwards 0 means 1, backwards 0 means the last
	Backwards bool
	Limit     int // 0 means no limit
}

// AllQuery selects records of the global log.
type AllQuery struct {
	From      uint64 // first position to return; forwards 0 means 1, backwards 0 means Until
	Until     uint64 // last position to consider; 0 means the head at the time of the call
	Backwards bool
	Limit     int // 0 means no limit
	Filter    Filter
}

// Filter keeps records whose stream and type match. Empty fields match
// everything; the conditions that are set must all hold.
type Filter struct {
	StreamPrefix string   // the stream name starts with this
	Category     string   // the stream's category (see Category) is this
	EventTypes   []string // the event type is one of these
}

// Match reports whether a record of the given stream and type passes f.
func (f *Filter) Match(stream, eventType string) bool {
	if f.StreamPrefix != "" && (len(stream) < len(f.StreamPrefix) || stream[:len(f.StreamPrefix)] != f.StreamPrefix) {
		return false
	}
	if f.Category != "" && Category(stream) != f.Category {
		return false
	}
	if len(f.EventTypes) > 0 {
		for _, t := range f.EventTypes {
			if t == eventType {
				return true
			}
		}
		return false
	}
	return true
}

// IsZero reports whether f matches everything.
func (f *Filter) IsZero() bool {
	return f.StreamPrefix == "" && f.Category == "" && len(f.EventTypes) == 0
}

// Category returns the part of a stream name before its first '-', or the
// whole name when it has none: the category of "order-42" is "order".
func Category(stream string) string {
	for i := 0; i < len(stream); i++ {
		if stream[i] == '-' {
			return stream[:i]
		}
	}
	return stream
}

// StreamInfo describes a stream.
type StreamInfo struct {
	Version  uint64    // version of the last event
	Position uint64    // position of the last event
	Created  time.Time // commit time of the first event
	Updated  time.Time // commit time of the last event
}

// Errors a backend returns. Store maps them to eventstore's errors.
var (
	ErrClosed         = errors.New("eventstore: store is closed")
	ErrStreamNotFound = errors.New("eventstore: stream not found")
	ErrCorrupt        = errors.New("eventstore: data is corrupt")
	// ErrUnknownOutcome: the connection to a remote database was lost
	// while a commit was being acknowledged, so it may or may not have
	// committed. Retrying the same events with the same IDs settles it:
	// the retry either commits them or returns the original result as a
	// duplicate.
	ErrUnknownOutcome = errors.New("eventstore: the outcome of the commit is unknown")
)

// ConflictError reports a failed expected-version check.
type ConflictError struct {
	Index  int    // index of the StreamAppend in the Batch
	Actual uint64 // the stream's current version
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eventstore: append %d: stream is at version %d", e.Index, e.Actual)
}

// IdempotencyError reports a batch some (not all) of whose event IDs were
// committed before, or whose IDs were all committed but in another shape
// (other streams, order or grouping).
type IdempotencyError struct {
	Committed int // how many of the batch's event IDs were already committed
	Total     int // how many events the batch has
	Reason    string
}

func (e *IdempotencyError) Error() string {
	return fmt.Sprintf("eventstore: %d of %d event IDs were already committed: %s", e.Committed, e.Total, e.Reason)
}

// CorruptionError reports data that failed its checksum or framing.
type CorruptionError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("eventstore: corrupt data in %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }
