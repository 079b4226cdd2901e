package drivertest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/fjord-data/fjord/eventstore"
)

// testIdempotentRetry checks that retrying an append with the same event
// IDs returns the original result with Duplicate set and writes nothing,
// also after the stream moved on and with an expected version that no
// longer holds.
func (s *suite) testIdempotentRetry(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	appendOK(t, ctx, st, "other-1", eventstore.NoStream, event("Opened"))
	evs := events("OrderPlaced", 2)
	orig := appendOK(t, ctx, st, "order-1", eventstore.NoStream, evs...)
	wantDup := orig
	wantDup.Duplicate = true

	retry := func(name string, exp eventstore.ExpectedVersion) {
		t.Helper()
		before := snapshot(t, ctx, st)
		got, err := st.Append(ctx, "order-1", exp, evs...)
		if err != nil {
			t.Fatalf("%s: retry: %v", name, err)
		}
		if diff := cmp.Diff(wantDup, got); diff != "" {
			t.Errorf("%s: retry result (-want +got):\n%s", name, diff)
		}
		checkUnchanged(t, ctx, st, before, name+": a retried append")
	}
	retry("right after", eventstore.NoStream)
	retry("same expectation as the original with Any", eventstore.Any)
	appendOK(t, ctx, st, "order-1", eventstore.Exact(2), event("ItemAdded"))
	appendOK(t, ctx, st, "other-1", eventstore.Any, event("Noted"))
	retry("after the stream moved on", eventstore.NoStream)
	retry("with a now-wrong exact version", eventstore.Exact(2))
}

// testIdempotentRetryMulti checks retries of a multi-stream append.
func (s *suite) testIdempotentRetryMulti(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	a := []eventstore.StreamAppend{
		{Stream: "order-1", Expected: eventstore.NoStream, Events: events("OrderPlaced", 2)},
		{Stream: "stock-1", Expected: eventstore.NoStream, Events: events("Reserved", 1)},
	}
	orig, err := st.AppendMulti(ctx, a...)
	if err != nil {
		t.Fatalf("AppendMulti: %v", err)
	}
	appendOK(t, ctx, st, "stock-1", eventstore.Exact(1), event("Released"))
	before := snapshot(t, ctx, st)
	got, err := st.AppendMulti(ctx, a...)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	want := make([]eventstore.AppendResult, len(orig))
	for i, r := range orig {
		r.Duplicate = true
		want[i] = r
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("retry results (-want +got):\n%s", diff)
	}
	checkUnchanged(t, ctx, st, before, "a retried multi-stream append")
}

// testIdempotencyMismatch checks that reusing committed event IDs in an
// append that is not a retry of the original is an *IdempotencyError and
// writes nothing.
func (s *suite) testIdempotencyMismatch(t *testing.T) {
	e1, e2, e3 := event("A"), event("B"), event("C")
	tests := []struct {
		name          string
		stream        eventstore.StreamID
		evs           []eventstore.Event
		committed     int
		total         int
		multiSecondTo eventstore.StreamID // when set, evs[1:] go to this stream in a multi-append
	}{
		{"PartialOverlap", "order-1", []eventstore.Event{e1, e3}, 1, 2, ""},
		{"PartialOverlapNewFirst", "order-1", []eventstore.Event{e3, e2}, 1, 2, ""},
		{"OtherStream", "order-2", []eventstore.Event{e1, e2}, 2, 2, ""},
		{"Reordered", "order-1", []eventstore.Event{e2, e1}, 2, 2, ""},
		{"SplitOverStreams", "order-1", []eventstore.Event{e1, e2}, 2, 2, "order-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, st := s.ctx(t), s.store(t)
			appendOK(t, ctx, st, "order-1", eventstore.NoStream, e1, e2)
			before := snapshot(t, ctx, st)
			var err error
			if tc.multiSecondTo != "" {
				_, err = st.AppendMulti(ctx,
					eventstore.StreamAppend{Stream: tc.stream, Events: tc.evs[:1]},
					eventstore.StreamAppend{Stream: tc.multiSecondTo, Events: tc.evs[1:]})
			} else {
				_, err = st.Append(ctx, tc.stream, eventstore.Any, tc.evs...)
			}
			if !errors.Is(err, eventstore.ErrDuplicateMismatch) {
				t.Fatalf("err = %v, want errors.Is(err, ErrDuplicateMismatch)", err)
			}
			var ie *eventstore.IdempotencyError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %T %v, want an *IdempotencyError", err, err)
			}
			if ie.Committed != tc.committed || ie.Total != tc.total || ie.Reason == "" {
				t.Errorf("IdempotencyError = %+v, want Committed %d, Total %d and a reason", *ie, tc.committed, tc.total)
			}
			checkUnchanged(t, ctx, st, before, "an append reusing event IDs")
		})
	}
}

// testGeneratedIDs checks that events without an ID get distinct UUIDv7s,
// and that Append leaves the caller's events alone.
func (s *suite) testGeneratedIDs(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	evs := []eventstore.Event{{Type: "A"}, {Type: "B"}, {Type: "C"}}
	appendOK(t, ctx, st, "order-1", eventstore.NoStream, evs...)
	appendOK(t, ctx, st, "order-2", eventstore.NoStream, eventstore.Event{Type: "A"})
	for i, e := range evs {
		if e.ID != uuid.Nil || e.ContentType != "" {
			t.Errorf("Append modified the caller's event %d: %+v", i, e)
		}
	}
	seen := map[uuid.UUID]bool{}
	for _, r := range readAll(t, ctx, st, eventstore.ReadAllOptions{}) {
		if r.ID == uuid.Nil || r.ID.Version() != 7 || r.ID.Variant() != uuid.RFC4122 {
			t.Errorf("event at position %d has ID %s (version %d), want a UUIDv7", r.Position, r.ID, r.ID.Version())
		}
		if seen[r.ID] {
			t.Errorf("ID %s generated twice", r.ID)
		}
		seen[r.ID] = true
	}
	if len(seen) != 4 {
		t.Errorf("read %d distinct IDs, want 4", len(seen))
	}
}
