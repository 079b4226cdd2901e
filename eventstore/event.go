package eventstore

import (
	"time"

	"github.com/google/uuid"
)

// StreamID names a stream, for example "order-42". Its category is the part
// before the first '-' ("order"). Names starting with '$' are reserved.
type StreamID string

// Category returns the part of the stream name before its first '-', or the
// whole name when it has none.
func (s StreamID) Category() string { return category(string(s)) }

// Version counts the events of a stream: the first event has version 1, and
// a stream with no events is at version 0.
type Version uint64

// Position is an event's place in the global log ($all): the first event
// ever committed has position 1, positions are gapless, and their order is
// the commit order.
type Position uint64

// Start and End are the positions to subscribe from: before the first event,
// or after the last one committed when the subscription starts.
const (
	Start Position = 0
	End   Position = ^Position(0)
)

// DefaultContentType is the content type of events that do not set one.
const DefaultContentType = "application/json"

// Event is an event to append.
type Event struct {
	// ID identifies the event for idempotency. Zero means the store
	// generates a UUIDv7. Retrying an append with the same IDs returns the
	// original result instead of appending again.
	ID uuid.UUID
	// Type names what happened, for example "OrderPlaced". Required.
	Type string
	// ContentType describes Data; empty means DefaultContentType.
	ContentType string
	// Data is the payload, JSON by convention.
	Data []byte
	// Metadata is free-form, JSON by convention.
	Metadata []byte
	// CorrelationID and CausationID link events into conversations:
	// the correlation ID is shared by everything one request caused, the
	// causation ID is the ID of the message that caused this one.
	CorrelationID string
	CausationID   string
}

// RecordedEvent is an event as committed.
type RecordedEvent struct {
	Event
	Stream   StreamID
	Version  Version
	Position Position
	Time     time.Time // commit time
}

// ExpectedVersion is the optimistic-concurrency condition of an append.
// The zero value is Any.
type ExpectedVersion struct {
	kind    uint8
	version Version
}

const (
	expectAny uint8 = iota
	expectNoStream
	expectExists
	expectExact
)

// The expected-version conditions that do not carry a version.
var (
	Any          = ExpectedVersion{kind: expectAny}      // no check
	NoStream     = ExpectedVersion{kind: expectNoStream} // the stream must have no events
	StreamExists = ExpectedVersion{kind: expectExists}   // the stream must have events
)

// Exact expects the stream to be at version v (Exact(0) is the same as
// NoStream).
func Exact(v Version) ExpectedVersion { return ExpectedVersion{kind: expectExact, version: v} }

// String describes the condition, for error messages.
func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectExists:
		return "stream exists"
	case expectExact:
		return "version " + uitoa(uint64(e.version))
	default:
		return "any"
	}
}

// AppendResult is the outcome of appending to one stream.
type AppendResult struct {
	Version   Version  // the stream's version after the append (that of its last event)
	Position  Position // position of the stream's last appended event
	Duplicate bool     // the events had been committed before; this is the original result
}

// StreamAppend is one stream's part of a multi-stream append.
type StreamAppend struct {
	Stream   StreamID
	Expected ExpectedVersion
	Events   []Event
}

// StreamInfo describes a stream.
type StreamInfo struct {
	Stream   StreamID
	Version  Version   // version of the last event
	Position Position  // position of the last event
	Created  time.Time // commit time of the first event
	Updated  time.Time // commit time of the last event
}

// Filter selects events of $all. Empty fields match everything; the fields
// that are set must all match. Category and EventTypes are served from
// indexes; StreamPrefix alone scans the log.
type Filter struct {
	StreamPrefix string   // stream name starts with this
	Category     string   // stream's category equals this
	EventTypes   []string // event type is one of these
}

func uitoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
