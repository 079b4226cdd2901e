package drivertest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fjord-data/fjord/eventstore"
)

// doneType is the type of the sentinel event a load test appends after its
// writers finish, so that consumers know when to stop.
const doneType = "Done"

// runWriters runs writer(ctx, w, n) for w in [0, writers), dividing total
// events among them, and returns a function that waits for them and
// returns the first error.
func runWriters(ctx context.Context, writers, total int, writer func(ctx context.Context, w, n int) error) (wait func() error) {
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		n := total / writers
		if w == 0 {
			n += total % writers
		}
		wg.Go(func() { errs[w] = writer(ctx, w, n) })
	}
	return func() error {
		wg.Wait()
		return errors.Join(errs...)
	}
}

// loadWriter appends n events as writer w, in batches of 1 to 3 events to
// its own stream "load-w", every third batch a multi-stream append that
// puts part of it in a stream shared with other writers. Each event's
// CorrelationID names its batch and its Metadata is "index/size", so that
// checkBatches can tell whether a batch was torn.
func loadWriter(st *eventstore.Store) func(ctx context.Context, w, n int) error {
	return func(ctx context.Context, w, n int) error {
		own := eventstore.StreamID(fmt.Sprintf("load-%d", w))
		for i, b := 0, 0; i < n; b++ {
			size := min(1+b%3, n-i)
			evs := make([]eventstore.Event, size)
			for j := range evs {
				evs[j] = event("Loaded")
				evs[j].CorrelationID = fmt.Sprintf("w%d-b%d", w, b)
				evs[j].Metadata = fmt.Appendf(nil, "%d/%d", j, size)
			}
			var err error
			if b%3 == 2 && size > 1 {
				shared := eventstore.StreamID(fmt.Sprintf("shared-%d", b%2))
				_, err = st.AppendMulti(ctx,
					eventstore.StreamAppend{Stream: own, Events: evs[:1]},
					eventstore.StreamAppend{Stream: shared, Events: evs[1:]})
			} else {
				_, err = st.Append(ctx, own, eventstore.Any, evs...)
			}
			if err != nil {
				return fmt.Errorf("writer %d, batch %d: %w", w, b, err)
			}
			i += size
		}
		return nil
	}
}

// appendDone appends the sentinel event and returns its position.
func appendDone(ctx context.Context, st *eventstore.Store) (eventstore.Position, error) {
	res, err := st.Append(ctx, "done-1", eventstore.Any, event(doneType))
	return res.Position, err
}

// checkBatches reports an error when the events of a batch written by
// loadWriter are not consecutive and complete in recs, a read of $all that
// starts at position 1.
func checkBatches(recs []eventstore.RecordedEvent) error {
	var key string
	var want, size int // next index expected in the current batch, and its size
	for _, r := range recs {
		if r.Type != "Loaded" {
			if want != size {
				return fmt.Errorf("batch %s torn: event at position %d of another batch after %d of %d events", key, r.Position, want, size)
			}
			continue
		}
		var j, n int
		if _, err := fmt.Sscanf(string(r.Metadata), "%d/%d", &j, &n); err != nil {
			return fmt.Errorf("position %d: metadata %q: %v", r.Position, r.Metadata, err)
		}
		if j == 0 {
			if want != size {
				return fmt.Errorf("batch %s torn: batch %s starts at position %d after %d of %d events", key, r.CorrelationID, r.Position, want, size)
			}
			key, want, size = r.CorrelationID, 0, n
		}
		if r.CorrelationID != key || j != want {
			return fmt.Errorf("position %d: event %d of batch %s, want event %d of batch %s", r.Position, j, r.CorrelationID, want, key)
		}
		want++
	}
	if want != size {
		return fmt.Errorf("batch %s torn: the read ends after %d of its %d events", key, want, size)
	}
	return nil
}

// checkDeliveries reports how the deliveries of a subscription differ from
// the events it should have delivered: exactly want, in order, and one
// DeliveredCaughtUp. For a $all subscription (all), the events before
// DeliveredCaughtUp are at or below its position and those after beyond it.
func checkDeliveries(ds []eventstore.Delivery, want []eventstore.RecordedEvent, all bool) error {
	var got []eventstore.RecordedEvent
	var caughtUp []eventstore.Position
	for _, d := range ds {
		switch d.Kind {
		case eventstore.DeliveredEvent:
			if d.Position != d.Event.Position {
				return fmt.Errorf("delivery position %d for an event at %d", d.Position, d.Event.Position)
			}
			if all && len(caughtUp) > 0 && d.Position <= caughtUp[0] {
				return fmt.Errorf("event at position %d after caught up at %d", d.Position, caughtUp[0])
			}
			got = append(got, d.Event)
		case eventstore.DeliveredCaughtUp:
			caughtUp = append(caughtUp, d.Position)
			if all && len(got) > 0 && got[len(got)-1].Position > d.Position {
				return fmt.Errorf("caught up at %d after delivering position %d", d.Position, got[len(got)-1].Position)
			}
		}
	}
	if len(caughtUp) != 1 {
		return fmt.Errorf("DeliveredCaughtUp sent %d times (at %v), want once", len(caughtUp), caughtUp)
	}
	if diff := diffEvents(want, got); diff != "" {
		return fmt.Errorf("events (-want +got):\n%s", diff)
	}
	return nil
}

// collectUntil gathers deliveries until stop returns true for one; it
// reports an error when the subscription ends first. It may run on any
// goroutine.
func (sub *subscriber) collectUntil(stop func(eventstore.Delivery) bool) ([]eventstore.Delivery, error) {
	var out []eventstore.Delivery
	for {
		select {
		case d := <-sub.ch:
			out = append(out, d)
			if stop(d) {
				return out, nil
			}
		case <-sub.done:
			return out, fmt.Errorf("subscription ended after %d deliveries: %v", len(out), sub.err)
		}
	}
}

// isDone reports whether d delivers the sentinel event.
func isDone(d eventstore.Delivery) bool {
	return d.Kind == eventstore.DeliveredEvent && d.Event.Type == doneType
}
