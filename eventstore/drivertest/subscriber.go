package drivertest

import (
	"context"
	"testing"

	"github.com/fjord-data/fjord/eventstore"
)

// subscriber runs a subscription in its own goroutine and hands deliveries
// over an unbuffered channel, so the subscription pulls only as fast as the
// test takes them: a test that stops calling next is a consumer that stops
// pulling. The goroutine ends when the iterator does, or on stop.
type subscriber struct {
	ch     chan eventstore.Delivery
	done   chan struct{}
	cancel context.CancelFunc
	// Set before done is closed.
	err   error // the error the iterator yielded, if any
	extra int   // items the iterator yielded after its error
}

// subscribe starts a subscription; the test's cleanup stops it.
func (s *suite) subscribe(t *testing.T, ctx context.Context, st *eventstore.Store, opts eventstore.SubscribeOptions) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	sub := &subscriber{ch: make(chan eventstore.Delivery), done: make(chan struct{}), cancel: cancel}
	go sub.run(ctx, st, opts)
	t.Cleanup(sub.stop)
	return sub
}

func (sub *subscriber) run(ctx context.Context, st *eventstore.Store, opts eventstore.SubscribeOptions) {
	defer close(sub.done)
	for d, err := range st.Subscribe(ctx, opts) {
		if sub.err != nil {
			sub.extra++ // the iterator must stop after its error
			return
		}
		if err != nil {
			sub.err = err
			continue
		}
		select {
		case sub.ch <- d:
		case <-ctx.Done():
			return
		}
	}
}

// stop cancels the subscription and waits for its goroutine to end.
func (sub *subscriber) stop() {
	sub.cancel()
	<-sub.done
}

// next returns the next delivery; it fails the test when the subscription
// ends first (the suite's timeout ends it too).
func (sub *subscriber) next(t *testing.T) eventstore.Delivery {
	t.Helper()
	select {
	case d := <-sub.ch:
		return d
	case <-sub.done:
		t.Fatalf("subscription ended: %v", sub.err)
		panic("unreachable")
	}
}

// end waits for the subscription to end by itself and returns its error.
func (sub *subscriber) end(t *testing.T) error {
	t.Helper()
	select {
	case d := <-sub.ch:
		t.Fatalf("delivery %+v where the subscription should have ended", d)
	case <-sub.done:
	}
	if sub.extra > 0 {
		t.Errorf("the subscription yielded %d items after its error %v", sub.extra, sub.err)
	}
	return sub.err
}

// events returns the next n events, skipping checkpoints and caught-up
// markers.
func (sub *subscriber) events(t *testing.T, n int) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for len(out) < n {
		if d := sub.next(t); d.Kind == eventstore.DeliveredEvent {
			out = append(out, d.Event)
		}
	}
	return out
}

// until returns every delivery up to and including the first for which
// stop returns true.
func (sub *subscriber) until(t *testing.T, stop func(eventstore.Delivery) bool) []eventstore.Delivery {
	t.Helper()
	var out []eventstore.Delivery
	for {
		d := sub.next(t)
		out = append(out, d)
		if stop(d) {
			return out
		}
	}
}

// caughtUp returns the deliveries up to and including DeliveredCaughtUp.
func (sub *subscriber) caughtUp(t *testing.T) []eventstore.Delivery {
	t.Helper()
	return sub.until(t, func(d eventstore.Delivery) bool { return d.Kind == eventstore.DeliveredCaughtUp })
}
