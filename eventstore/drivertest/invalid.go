package drivertest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fjord-data/fjord/eventstore"
)

// testLimits are small limits so that the suite can cross each of them
// cheaply.
var testLimits = eventstore.Limits{MaxStreamName: 32, MaxEventType: 24, MaxEventSize: 512, MaxAppendSize: 2048, MaxAppendEvents: 10}

// testInvalid checks that every kind of bad input is rejected with an
// *InvalidError that names the field and the problem, and writes nothing.
func (s *suite) testInvalid(t *testing.T) {
	ctx := s.ctx(t)
	st := s.storeWith(t, &eventstore.Options{Limits: testLimits})
	appendOK(t, ctx, st, "order-1", eventstore.NoStream, event("OrderPlaced"))
	before := snapshot(t, ctx, st)

	ok := func() []eventstore.Event { return []eventstore.Event{event("OrderPlaced")} }
	appendTo := func(stream eventstore.StreamID, evs ...eventstore.Event) func(context.Context, *eventstore.Store) error {
		return func(ctx context.Context, st *eventstore.Store) error {
			_, err := st.Append(ctx, stream, eventstore.Any, evs...)
			return err
		}
	}
	appendEvents := func(evs ...eventstore.Event) func(context.Context, *eventstore.Store) error {
		return appendTo("order-2", evs...)
	}
	multi := func(a ...eventstore.StreamAppend) func(context.Context, *eventstore.Store) error {
		return func(ctx context.Context, st *eventstore.Store) error {
			_, err := st.AppendMulti(ctx, a...)
			return err
		}
	}
	typed := func(typ string) eventstore.Event { e := event("X"); e.Type = typ; return e }
	sized := func(n int) eventstore.Event { e := event("Big"); e.Data = make([]byte, n); return e }
	id := uuid.New()
	sameID := func(typ string) eventstore.Event { e := event(typ); e.ID = id; return e }

	tests := []struct {
		name   string
		op     func(context.Context, *eventstore.Store) error
		field  string
		reason string // a phrase the message must contain
	}{
		{"StreamEmpty", appendTo("", ok()...), "stream", "empty"},
		{"StreamTooLong", appendTo(eventstore.StreamID(strings.Repeat("s", 33)), ok()...), "stream", "limit of 32"},
		{"StreamDollar", appendTo("$all", ok()...), "stream", "reserved"},
		{"StreamDollarCategory", appendTo("$ce-order", ok()...), "stream", "reserved"},
		{"StreamNewline", appendTo("order\n1", ok()...), "stream", "control character"},
		{"StreamNUL", appendTo("order-\x001", ok()...), "stream", "control character"},
		{"StreamDEL", appendTo("order-\x7f", ok()...), "stream", "control character"},
		{"StreamC1", appendTo("order-\u0085", ok()...), "stream", "control character"},
		{"StreamBadUTF8", appendTo("order-\xff\xfe", ok()...), "stream", "UTF-8"},
		{"TypeEmpty", appendEvents(event("A"), typed("")), "events[1].type", "empty"},
		{"TypeTooLong", appendEvents(typed(strings.Repeat("T", 25))), "events[0].type", "limit of 24"},
		{"TypeControl", appendEvents(typed("Order\tPlaced")), "events[0].type", "control character"},
		{"TypeBadUTF8", appendEvents(typed("Order\xc3")), "events[0].type", "UTF-8"},
		{"EventTooBig", appendEvents(event("A"), sized(600)), "events[1]", "limit of 512"},
		{"AppendTooBig", appendEvents(sized(400), sized(400), sized(400), sized(400), sized(400)), "events", "limit of 2048"},
		{"TooManyEvents", appendEvents(events("A", 11)...), "events", "limit of 10"},
		{"NoEvents", appendEvents(), "events", "no events"},
		{"NoStreams", multi(), "append", "no streams"},
		{"DuplicateIDs", appendEvents(sameID("A"), event("B"), sameID("C")), "events[2].id", "twice"},
		{"DuplicateIDsAcrossStreams", multi(
			eventstore.StreamAppend{Stream: "order-2", Events: []eventstore.Event{sameID("A")}},
			eventstore.StreamAppend{Stream: "order-3", Events: []eventstore.Event{sameID("B")}}), "appends[1].events[0].id", "twice"},
		{"SameStreamTwice", multi(
			eventstore.StreamAppend{Stream: "order-2", Events: ok()},
			eventstore.StreamAppend{Stream: "order-2", Events: ok()}), "appends[1].stream", "twice"},
		{"MultiSecondInvalid", multi(
			eventstore.StreamAppend{Stream: "order-2", Events: ok()},
			eventstore.StreamAppend{Stream: "$order-3", Events: ok()}), "appends[1].stream", "reserved"},
		{"MultiNoEvents", multi(
			eventstore.StreamAppend{Stream: "order-2", Events: ok()},
			eventstore.StreamAppend{Stream: "order-3"}), "appends[1].events", "no events"},
		{"MultiTooManyEvents", multi(
			eventstore.StreamAppend{Stream: "order-2", Events: events("A", 6)},
			eventstore.StreamAppend{Stream: "order-3", Events: events("A", 5)}), "events", "limit of 10"},
		{"ReadStreamNegativeLimit", func(ctx context.Context, st *eventstore.Store) error {
			return firstErr(st.ReadStream(ctx, "order-1", eventstore.ReadStreamOptions{Limit: -1}))
		}, "limit", "negative"},
		{"ReadAllNegativeLimit", func(ctx context.Context, st *eventstore.Store) error {
			return firstErr(st.ReadAll(ctx, eventstore.ReadAllOptions{Limit: -1}))
		}, "limit", "negative"},
		{"ReadStreamBadName", func(ctx context.Context, st *eventstore.Store) error {
			return firstErr(st.ReadStream(ctx, "$all", eventstore.ReadStreamOptions{}))
		}, "stream", "reserved"},
		{"StreamInfoBadName", func(ctx context.Context, st *eventstore.Store) error {
			_, err := st.StreamInfo(ctx, "")
			return err
		}, "stream", "empty"},
		{"SubscribeBadName", func(ctx context.Context, st *eventstore.Store) error {
			return firstErr(st.Subscribe(ctx, eventstore.SubscribeOptions{Stream: "order\x00"}))
		}, "stream", "control character"},
		{"SubscribeStreamWithFilter", func(ctx context.Context, st *eventstore.Store) error {
			return firstErr(st.Subscribe(ctx, eventstore.SubscribeOptions{Stream: "order-1", Filter: eventstore.Filter{Category: "order"}}))
		}, "filter", "filter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op(ctx, st)
			if !errors.Is(err, eventstore.ErrInvalid) {
				t.Fatalf("err = %v, want errors.Is(err, ErrInvalid)", err)
			}
			var ie *eventstore.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %T %v, want an *InvalidError", err, err)
			}
			if ie.Field != tc.field {
				t.Errorf("InvalidError.Field = %q, want %q (%v)", ie.Field, tc.field, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			checkUnchanged(t, ctx, st, before, "a rejected request")
		})
	}
}

// testAtLimits checks that inputs exactly at the limits are accepted.
func (s *suite) testAtLimits(t *testing.T) {
	ctx := s.ctx(t)
	st := s.storeWith(t, &eventstore.Options{Limits: testLimits})
	if got := st.Limits(); got != testLimits {
		t.Fatalf("Limits() = %+v, want %+v", got, testLimits)
	}
	name := eventstore.StreamID(strings.Repeat("s", testLimits.MaxStreamName))
	typ := strings.Repeat("T", testLimits.MaxEventType)
	appendOK(t, ctx, st, name, eventstore.NoStream, events(typ, testLimits.MaxAppendEvents)...)
	appendOK(t, ctx, st, "ünïcødé-名前", eventstore.NoStream, event("Noted"))
	if got := len(readAll(t, ctx, st, eventstore.ReadAllOptions{})); got != testLimits.MaxAppendEvents+1 {
		t.Errorf("read %d events, want %d", got, testLimits.MaxAppendEvents+1)
	}
}
