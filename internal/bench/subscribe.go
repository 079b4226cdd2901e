package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fjord-data/fjord/eventstore"
)

// subscribeLatency starts a live subscription to $all, then appends
// p.events events one at a time from one writer, each waiting for its
// acknowledgement, and times each event from the start of its append to
// its delivery.
func subscribeLatency(ctx context.Context, s *eventstore.Store, p params) (Result, error) {
	n := p.events
	sent := make([]atomic.Int64, n) // ns after start when append i began
	lat := make(latencies, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	live := make(chan eventstore.Position, 1)
	startCh := make(chan time.Time, 1)
	done := make(chan struct{})
	var subErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		subErr = deliver(ctx, s, live, startCh, sent, lat)
	})
	var base eventstore.Position
	select {
	case base = <-live:
	case <-done:
		return Result{}, subErr
	}
	if base != 0 {
		cancel()
		wg.Wait()
		return Result{}, fmt.Errorf("the store is not empty (head %d)", base)
	}
	start := time.Now()
	startCh <- start
	evs := events(1, p.payload)
	var appendErr error
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		sent[i].Store(int64(time.Since(start)))
		if _, err := s.Append(ctx, streamName(i%p.streams), eventstore.Any, evs...); err != nil {
			appendErr = err
			cancel()
			break
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if appendErr != nil {
		return Result{}, appendErr // the subscription only saw the cancellation
	}
	if subErr != nil {
		return Result{}, subErr
	}
	r := Result{Events: n, Writers: 1}
	lat.summarize(&r, elapsed)
	return r, nil
}

// deliver subscribes to $all from its end, reports the head it starts at on
// live, and records the latency of each of len(lat) events. Event i is the
// one at position i+1.
func deliver(ctx context.Context, s *eventstore.Store, live chan<- eventstore.Position, startCh <-chan time.Time,
	sent []atomic.Int64, lat latencies) error {
	var start time.Time
	got := 0
	for d, err := range s.Subscribe(ctx, eventstore.SubscribeOptions{From: eventstore.End}) {
		if err != nil {
			return fmt.Errorf("subscription: %w", err)
		}
		switch d.Kind {
		case eventstore.DeliveredCaughtUp:
			live <- d.Position
			select {
			case start = <-startCh:
			case <-ctx.Done():
				return ctx.Err()
			}
		case eventstore.DeliveredEvent:
			i := int(d.Position) - 1
			if i < 0 || i >= len(lat) {
				return fmt.Errorf("delivered position %d, want 1..%d", d.Position, len(lat))
			}
			lat[i] = time.Since(start) - time.Duration(sent[i].Load())
			if got++; got == len(lat) {
				return nil
			}
		}
	}
	return errors.New("subscription ended early")
}
