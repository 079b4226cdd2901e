package drivertest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/driver"
)

// testStreamInfoNotFound checks ErrStreamNotFound from the Store and the
// driver, on an empty store and beside other streams.
func (s *suite) testStreamInfoNotFound(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	check := func(stream eventstore.StreamID) {
		t.Helper()
		if _, err := st.StreamInfo(ctx, stream); !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Errorf("StreamInfo(%q) err = %v, want ErrStreamNotFound", stream, err)
		}
		if _, err := st.Backend().StreamInfo(ctx, string(stream)); !errors.Is(err, driver.ErrStreamNotFound) {
			t.Errorf("backend StreamInfo(%q) err = %v, want driver.ErrStreamNotFound", stream, err)
		}
	}
	check("order-1")
	appendOK(t, ctx, st, "order-12", eventstore.NoStream, event("OrderPlaced"))
	check("order-1")
	check("order")
	if _, err := st.StreamInfo(ctx, "order-12"); err != nil {
		t.Errorf("StreamInfo(order-12): %v", err)
	}
}

// testStreamInfo checks version, position and times of a stream as it
// grows among others.
func (s *suite) testStreamInfo(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	appendOK(t, ctx, st, "other-1", eventstore.NoStream, event("Opened"))
	appendOK(t, ctx, st, "order-1", eventstore.NoStream, events("OrderPlaced", 2)...)
	appendOK(t, ctx, st, "other-1", eventstore.Any, event("Noted"))
	check := func(wantVersion eventstore.Version, wantPos eventstore.Position) {
		t.Helper()
		recs := readStream(t, ctx, st, "order-1", eventstore.ReadStreamOptions{})
		want := eventstore.StreamInfo{Stream: "order-1", Version: wantVersion, Position: wantPos,
			Created: recs[0].Time, Updated: recs[len(recs)-1].Time}
		got, err := st.StreamInfo(ctx, "order-1")
		if err != nil {
			t.Fatalf("StreamInfo: %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("StreamInfo (-want +got):\n%s", diff)
		}
		if got.Created.IsZero() || got.Updated.Before(got.Created) {
			t.Errorf("StreamInfo times: created %v, updated %v", got.Created, got.Updated)
		}
	}
	check(2, 3)
	appendOK(t, ctx, st, "order-1", eventstore.Exact(2), events("ItemAdded", 3)...)
	check(5, 7)
	appendOK(t, ctx, st, "other-1", eventstore.Any, event("Noted"))
	check(5, 7)
}

// testCallsAfterClose checks that every call after Close fails with
// ErrClosed.
func (s *suite) testCallsAfterClose(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	appendOK(t, ctx, st, "order-1", eventstore.NoStream, event("OrderPlaced"))
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, appendErr := st.Append(ctx, "order-1", eventstore.Any, event("ItemAdded"))
	_, headErr := st.Head(ctx)
	_, infoErr := st.StreamInfo(ctx, "order-1")
	calls := []struct {
		name string
		err  error
	}{
		{"Append", appendErr},
		{"Head", headErr},
		{"StreamInfo", infoErr},
		{"ReadAll", firstErr(st.ReadAll(ctx, eventstore.ReadAllOptions{}))},
		{"ReadStream", firstErr(st.ReadStream(ctx, "order-1", eventstore.ReadStreamOptions{}))},
		{"Subscribe", firstErr(st.Subscribe(ctx, eventstore.SubscribeOptions{}))},
	}
	for _, c := range calls {
		if !errors.Is(c.err, eventstore.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", c.name, c.err)
		}
	}
}
