package drivertest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/driver"
)

// testExpectedVersion checks every expected-version rule against a new and
// an existing stream: success appends and reports the new version and
// position; failure is a *VersionError with the expected and actual
// versions and writes nothing.
func (s *suite) testExpectedVersion(t *testing.T) {
	const stream = "account-1"
	tests := []struct {
		name     string
		existing int // events in the stream before the append
		expected eventstore.ExpectedVersion
		ok       bool
	}{
		{"Any/new", 0, eventstore.Any, true},
		{"Any/existing", 2, eventstore.Any, true},
		{"NoStream/new", 0, eventstore.NoStream, true},
		{"NoStream/existing", 2, eventstore.NoStream, false},
		{"StreamExists/new", 0, eventstore.StreamExists, false},
		{"StreamExists/existing", 2, eventstore.StreamExists, true},
		{"Exact0/new", 0, eventstore.Exact(0), true},
		{"Exact0/existing", 2, eventstore.Exact(0), false},
		{"Exact1/new", 0, eventstore.Exact(1), false},
		{"ExactCurrent/existing", 2, eventstore.Exact(2), true},
		{"ExactBehind/existing", 2, eventstore.Exact(1), false},
		{"ExactAhead/existing", 2, eventstore.Exact(3), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, st := s.ctx(t), s.store(t)
			// Another stream first, so that positions and versions differ.
			appendOK(t, ctx, st, "other-1", eventstore.NoStream, event("Opened"))
			if tc.existing > 0 {
				appendOK(t, ctx, st, stream, eventstore.NoStream, events("Deposited", tc.existing)...)
			}
			before := snapshot(t, ctx, st)
			res, err := st.Append(ctx, stream, tc.expected, events("Withdrawn", 2)...)
			if !tc.ok {
				wantVersionError(t, err, eventstore.VersionError{Stream: stream, Expected: tc.expected, Actual: eventstore.Version(tc.existing)})
				checkUnchanged(t, ctx, st, before, "a failed append")
				return
			}
			if err != nil {
				t.Fatalf("Append(%v): %v", tc.expected, err)
			}
			wantVersion := eventstore.Version(tc.existing + 2)
			want := eventstore.AppendResult{Version: wantVersion, Position: before.Head + 2}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("AppendResult (-want +got):\n%s", diff)
			}
			got := versions(readStream(t, ctx, st, stream, eventstore.ReadStreamOptions{}))
			if diff := cmp.Diff(span(1, wantVersion), got); diff != "" {
				t.Errorf("stream versions (-want +got):\n%s", diff)
			}
		})
	}
}

// testRoundTrip checks that every field of an event comes back as appended,
// through stream reads, $all reads, the raw driver and subscriptions.
func (s *suite) testRoundTrip(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	full := eventstore.Event{
		ID:            uuid.MustParse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
		Type:          "OrderPlaced",
		ContentType:   "application/octet-stream",
		Data:          []byte{0, 1, 2, 0xff, 0xfe, '\n', 0},
		Metadata:      []byte(`{"user":"ünïcødé","trace":"00-abc-01"}`),
		CorrelationID: "corr-1",
		CausationID:   "cause-1",
	}
	bare := eventstore.Event{ID: uuid.New(), Type: "OrderNoted"} // no data, default content type
	withJSON := eventstore.Event{ID: uuid.New(), Type: "OrderShipped", Data: []byte(`{"carrier":"x"}`)}
	appendOK(t, ctx, st, "order-1", eventstore.NoStream, full, bare)
	appendOK(t, ctx, st, "customer-1", eventstore.NoStream, withJSON)
	appendOK(t, ctx, st, "order-1", eventstore.Exact(2), withJSON2(withJSON))

	defaulted := func(e eventstore.Event) eventstore.Event {
		if e.ContentType == "" {
			e.ContentType = eventstore.DefaultContentType
		}
		return e
	}
	want := []eventstore.RecordedEvent{
		{Event: full, Stream: "order-1", Version: 1, Position: 1},
		{Event: defaulted(bare), Stream: "order-1", Version: 2, Position: 2},
		{Event: defaulted(withJSON), Stream: "customer-1", Version: 1, Position: 3},
		{Event: defaulted(withJSON2(withJSON)), Stream: "order-1", Version: 3, Position: 4},
	}
	check := func(what string, got []eventstore.RecordedEvent) {
		t.Helper()
		if diff := cmp.Diff(want, got, cmpOpts, ignoreTime); diff != "" {
			t.Errorf("%s (-want +got):\n%s", what, diff)
		}
		for i, r := range got {
			if r.Time.IsZero() {
				t.Errorf("%s: event at position %d has no time", what, r.Position)
			}
			if i > 0 && r.Time.Before(got[i-1].Time) {
				t.Errorf("%s: time %v at position %d is before %v at position %d", what, r.Time, r.Position, got[i-1].Time, got[i-1].Position)
			}
		}
	}
	all := readAll(t, ctx, st, eventstore.ReadAllOptions{})
	check("ReadAll", all)
	var fromStreams []eventstore.RecordedEvent
	fromStreams = append(fromStreams, readStream(t, ctx, st, "order-1", eventstore.ReadStreamOptions{})...)
	fromStreams = append(fromStreams, readStream(t, ctx, st, "customer-1", eventstore.ReadStreamOptions{})...)
	check("ReadStream", []eventstore.RecordedEvent{fromStreams[0], fromStreams[1], fromStreams[3], fromStreams[2]})

	raw, err := collect(st.Backend().ReadAll(ctx, driver.AllQuery{}))
	if err != nil {
		t.Fatalf("backend ReadAll: %v", err)
	}
	var fromRaw []eventstore.RecordedEvent
	for _, r := range raw {
		fromRaw = append(fromRaw, eventstore.FromRecord(r))
	}
	check("backend ReadAll", fromRaw)

	sub := s.subscribe(t, ctx, st, eventstore.SubscribeOptions{})
	check("Subscribe", sub.events(t, 4))
	// Times are the same whichever way an event is read.
	if diff := cmp.Diff(all, fromRaw, cmpOpts); diff != "" {
		t.Errorf("Store and backend reads differ (-store +backend):\n%s", diff)
	}
}

// withJSON2 returns a copy of e with a new ID.
func withJSON2(e eventstore.Event) eventstore.Event {
	e.ID = uuid.MustParse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c")
	return e
}

// testTimeNonDecreasing checks that commit times never go back as positions
// grow, across many separate appends.
func (s *suite) testTimeNonDecreasing(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	for i := range 50 {
		appendOK(t, ctx, st, eventstore.StreamID([]string{"a-1", "b-1", "c-1"}[i%3]), eventstore.Any, events("Ticked", 1+i%3)...)
	}
	recs := readAll(t, ctx, st, eventstore.ReadAllOptions{})
	for i, r := range recs {
		if r.Time.IsZero() {
			t.Fatalf("event at position %d has no time", r.Position)
		}
		if i > 0 && r.Time.Before(recs[i-1].Time) {
			t.Fatalf("time %v at position %d is before %v at position %d", r.Time, r.Position, recs[i-1].Time, recs[i-1].Position)
		}
	}
}
