package drivertest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/eventstore"
)

// testMultiAtomic checks that a multi-stream append whose expectation fails
// for any one stream writes nothing to any stream, and names that stream.
func (s *suite) testMultiAtomic(t *testing.T) {
	good := func() []eventstore.StreamAppend {
		return []eventstore.StreamAppend{
			{Stream: "order-1", Expected: eventstore.Exact(1), Events: events("ItemAdded", 2)},
			{Stream: "stock-1", Expected: eventstore.NoStream, Events: events("Reserved", 1)},
			{Stream: "audit-1", Expected: eventstore.Any, Events: events("Noted", 1)},
		}
	}
	tests := []struct {
		name   string
		broken int // which append gets a wrong expectation
		exp    eventstore.ExpectedVersion
		actual eventstore.Version
	}{
		{"First", 0, eventstore.Exact(4), 1},
		{"Middle", 1, eventstore.StreamExists, 0},
		{"Last", 2, eventstore.NoStream, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, st := s.ctx(t), s.store(t)
			appendOK(t, ctx, st, "order-1", eventstore.NoStream, event("OrderPlaced"))
			appendOK(t, ctx, st, "audit-1", eventstore.NoStream, event("Noted"))
			before := snapshot(t, ctx, st)
			appends := good()
			appends[tc.broken].Expected = tc.exp
			res, err := st.AppendMulti(ctx, appends...)
			if res != nil {
				t.Errorf("AppendMulti returned results %v with an error", res)
			}
			wantVersionError(t, err, eventstore.VersionError{Stream: appends[tc.broken].Stream, Expected: tc.exp, Actual: tc.actual})
			checkUnchanged(t, ctx, st, before, "a failed multi-stream append")
		})
	}
}

// testMultiConsecutive checks that a successful multi-stream append puts
// all its events at consecutive positions, stream by stream in the order
// given, and returns one result per stream in that order.
func (s *suite) testMultiConsecutive(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	appendOK(t, ctx, st, "order-1", eventstore.NoStream, event("OrderPlaced"))
	a := []eventstore.StreamAppend{
		{Stream: "order-1", Expected: eventstore.Exact(1), Events: events("ItemAdded", 2)},
		{Stream: "stock-1", Expected: eventstore.NoStream, Events: events("Reserved", 3)},
		{Stream: "audit-1", Expected: eventstore.Any, Events: events("Noted", 1)},
	}
	res, err := st.AppendMulti(ctx, a...)
	if err != nil {
		t.Fatalf("AppendMulti: %v", err)
	}
	wantRes := []eventstore.AppendResult{{Version: 3, Position: 3}, {Version: 3, Position: 6}, {Version: 1, Position: 7}}
	if diff := cmp.Diff(wantRes, res); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	type placed struct {
		Stream   eventstore.StreamID
		Version  eventstore.Version
		Position eventstore.Position
		ID       string
	}
	var want []placed
	p := eventstore.Position(2)
	for i, sa := range a {
		first := wantRes[i].Version - eventstore.Version(len(sa.Events)) + 1
		for j, e := range sa.Events {
			want = append(want, placed{sa.Stream, first + eventstore.Version(j), p, e.ID.String()})
			p++
		}
	}
	var got []placed
	for _, r := range readAll(t, ctx, st, eventstore.ReadAllOptions{From: 2}) {
		got = append(got, placed{r.Stream, r.Version, r.Position, r.ID.String()})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events of the multi-stream append in $all (-want +got):\n%s", diff)
	}
	// The events share one commit time.
	recs := readAll(t, ctx, st, eventstore.ReadAllOptions{From: 2})
	for _, r := range recs[1:] {
		if !r.Time.Equal(recs[0].Time) {
			t.Errorf("event at position %d has time %v, want the batch's %v", r.Position, r.Time, recs[0].Time)
		}
	}
}
