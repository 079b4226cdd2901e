package eventstore

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// Limits bound what one append may carry. Zero fields take the defaults.
type Limits struct {
	MaxStreamName   int // bytes in a stream name; default 256
	MaxEventType    int // bytes in an event type; default 256
	MaxEventSize    int // bytes of data + metadata + headers of one event; default 1 MiB
	MaxAppendSize   int // bytes of all events of one append; default 8 MiB
	MaxAppendEvents int // events in one append; default 10,000
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxStreamName, 256)
	def(&l.MaxEventType, 256)
	def(&l.MaxEventSize, 1<<20)
	def(&l.MaxAppendSize, 8<<20)
	def(&l.MaxAppendEvents, 10_000)
	return l
}

// ValidateStreamID reports whether s may name a stream that users append to:
// non-empty, at most max bytes of valid UTF-8, no control characters, and not
// starting with '$' (reserved for the store's own names such as $all).
func ValidateStreamID(s StreamID, max int) error {
	switch {
	case s == "":
		return invalid("stream", "the stream name is empty")
	case len(s) > max:
		return invalid("stream", "the stream name is %d bytes long, over the limit of %d", len(s), max)
	case s[0] == '$':
		return invalid("stream", "stream names starting with '$' are reserved: %q", s)
	case !utf8.ValidString(string(s)):
		return invalid("stream", "the stream name is not valid UTF-8: %q", s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid("stream", "the stream name %q contains the control character %U", s, r)
		}
	}
	return nil
}

func validateEventType(t string, field string, max int) error {
	switch {
	case t == "":
		return invalid(field, "the event type is empty")
	case len(t) > max:
		return invalid(field, "the event type is %d bytes long, over the limit of %d", len(t), max)
	case !utf8.ValidString(t):
		return invalid(field, "the event type is not valid UTF-8: %q", t)
	}
	for _, r := range t {
		if unicode.IsControl(r) {
			return invalid(field, "the event type %q contains the control character %U", t, r)
		}
	}
	return nil
}

func eventSize(e *Event) int {
	return len(e.Data) + len(e.Metadata) + len(e.Type) + len(e.ContentType) + len(e.CorrelationID) + len(e.CausationID) + 16
}

// prepare validates appends and turns them into a backend batch, with
// generated event IDs and default content types filled in. It never
// modifies the caller's slices.
func (s *Store) prepare(appends []StreamAppend) (*driver.Batch, error) {
	if len(appends) == 0 {
		return nil, invalid("append", "no streams to append to")
	}
	l := s.limits
	out := &driver.Batch{Appends: make([]driver.StreamAppend, len(appends))}
	seenStream := make(map[StreamID]int, len(appends))
	seenID := make(map[uuid.UUID]string)
	total, count := 0, 0
	for i, a := range appends {
		prefix := ""
		if len(appends) > 1 {
			prefix = fmt.Sprintf("appends[%d].", i)
		}
		if err := ValidateStreamID(a.Stream, l.MaxStreamName); err != nil {
			err.(*InvalidError).Field = prefix + "stream"
			return nil, err
		}
		if j, dup := seenStream[a.Stream]; dup {
			return nil, invalid(prefix+"stream", "stream %q appears twice in one append (also at appends[%d])", a.Stream, j)
		}
		seenStream[a.Stream] = i
		if len(a.Events) == 0 {
			return nil, invalid(prefix+"events", "no events to append to stream %q", a.Stream)
		}
		evs := make([]driver.Event, len(a.Events))
		for j, e := range a.Events {
			field := fmt.Sprintf("%sevents[%d]", prefix, j)
			if err := validateEventType(e.Type, field+".type", l.MaxEventType); err != nil {
				return nil, err
			}
			size := eventSize(&e)
			if size > l.MaxEventSize {
				return nil, invalid(field, "the event is %d bytes, over the limit of %d", size, l.MaxEventSize)
			}
			total += size
			count++
			generated := e.ID == uuid.Nil
			if generated {
				id, err := uuid.NewV7()
				if err != nil {
					return nil, fmt.Errorf("eventstore: generating an event ID: %w", err)
				}
				e.ID = id
			}
			if other, dup := seenID[e.ID]; dup {
				return nil, invalid(field+".id", "event ID %s appears twice in one append (also at %s)", e.ID, other)
			}
			seenID[e.ID] = field
			if e.ContentType == "" {
				e.ContentType = DefaultContentType
			}
			evs[j] = driver.Event{ID: e.ID, Type: e.Type, ContentType: e.ContentType, Data: e.Data, Metadata: e.Metadata,
				CorrelationID: e.CorrelationID, CausationID: e.CausationID, GeneratedID: generated}
		}
		out.Appends[i] = driver.StreamAppend{Stream: string(a.Stream),
			Expected: driver.Expected{Kind: driver.ExpectKind(a.Expected.kind), Version: uint64(a.Expected.version)}, Events: evs}
	}
	if count > l.MaxAppendEvents {
		return nil, invalid("events", "the append has %d events, over the limit of %d", count, l.MaxAppendEvents)
	}
	if total > l.MaxAppendSize {
		return nil, invalid("events", "the append is %d bytes, over the limit of %d", total, l.MaxAppendSize)
	}
	return out, nil
}
