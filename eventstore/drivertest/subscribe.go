package drivertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/fjord-data/fjord/eventstore"
)

// consumer is a subscription consumed on its own goroutine until the
// sentinel event, and what it should have delivered.
type consumer struct {
	name string
	sub  *subscriber
	all  bool                                                            // a $all subscription
	want func(all []eventstore.RecordedEvent) []eventstore.RecordedEvent // from the final $all
	ds   []eventstore.Delivery
	err  error
}

// consume runs every consumer until its sentinel, while load runs, then
// checks each against the final $all.
func (s *suite) consume(t *testing.T, ctx context.Context, st *eventstore.Store, cs []*consumer, load func() error) {
	t.Helper()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { c.ds, c.err = c.sub.collectUntil(isDone) })
	}
	err := load()
	if err == nil {
		_, err = appendDone(ctx, st)
	}
	if err != nil {
		for _, c := range cs {
			c.sub.stop()
		}
		wg.Wait()
		t.Fatalf("load: %v", err)
	}
	wg.Wait()
	all := readAll(t, ctx, st, eventstore.ReadAllOptions{})
	if err := checkContiguous(positions(all), 1); err != nil {
		t.Fatalf("final $all: %v", err)
	}
	for _, c := range cs {
		if c.err != nil {
			t.Errorf("%s: %v", c.name, c.err)
			continue
		}
		if err := checkDeliveries(c.ds, c.want(all), c.all); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// preload appends n events with loadWriter and returns the head.
func (s *suite) preload(t *testing.T, ctx context.Context, st *eventstore.Store, n int) eventstore.Position {
	t.Helper()
	if err := runWriters(ctx, 1, n, loadWriter(st))(); err != nil {
		t.Fatalf("preload: %v", err)
	}
	return head(t, ctx, st)
}

// testCatchUpToLive starts $all subscriptions at Start, in the middle and
// at End, and checks that each receives exactly the events after its start,
// in order, with one DeliveredCaughtUp, while writers append: the Start and
// middle ones begin catching up while the writers run.
func (s *suite) testCatchUpToLive(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	m := s.preload(t, ctx, st, s.opts.Events/2)
	mid := m / 2

	end := &consumer{name: "End", all: true, sub: s.subscribe(t, ctx, st, eventstore.SubscribeOptions{From: eventstore.End})}
	// The head is known at End's start only once it has caught up; it
	// must have delivered nothing.
	if ds := end.sub.caughtUp(t); len(ds) != 1 || ds[0].Position != m {
		t.Fatalf("subscription from End on a quiet store: deliveries %+v, want only caught up at %d", ds, m)
	}
	end.want = func(all []eventstore.RecordedEvent) []eventstore.RecordedEvent { return all[m:] }
	end.ds = []eventstore.Delivery{{Kind: eventstore.DeliveredCaughtUp, Position: m}}

	after := func(p eventstore.Position) func([]eventstore.RecordedEvent) []eventstore.RecordedEvent {
		return func(all []eventstore.RecordedEvent) []eventstore.RecordedEvent { return all[p:] }
	}
	cs := []*consumer{
		{name: "Start", all: true, want: after(0), sub: s.subscribe(t, ctx, st, eventstore.SubscribeOptions{})},
		{name: "StartSmallPages", all: true, want: after(0), sub: s.subscribe(t, ctx, st, eventstore.SubscribeOptions{From: eventstore.Start, PageSize: 7})},
		{name: "Middle", all: true, want: after(mid), sub: s.subscribe(t, ctx, st, eventstore.SubscribeOptions{From: mid, PageSize: 64})},
		{name: "Head", all: true, want: after(m), sub: s.subscribe(t, ctx, st, eventstore.SubscribeOptions{From: m})},
	}
	wait := runWriters(ctx, s.opts.Writers, s.opts.Events-int(m), loadWriter(st))
	s.consume(t, ctx, st, cs, wait)
	// End's deliveries began with its caught-up marker, taken above.
	endDs, err := end.sub.collectUntil(isDone)
	if err != nil {
		t.Fatalf("End: %v", err)
	}
	all := readAll(t, ctx, st, eventstore.ReadAllOptions{})
	if err := checkDeliveries(append(end.ds, endDs...), end.want(all), true); err != nil {
		t.Errorf("End: %v", err)
	}
	if err := checkBatches(all); err != nil {
		t.Errorf("final $all: %v", err)
	}
}

// testStreamCatchUpToLive does the same for stream subscriptions: after
// version 0, after a middle version, and at EndVersion.
func (s *suite) testStreamCatchUpToLive(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	s.preload(t, ctx, st, s.opts.Events/4)
	const stream = "load-0"
	info, err := st.StreamInfo(ctx, stream)
	if err != nil {
		t.Fatalf("StreamInfo: %v", err)
	}
	v := info.Version

	endSub := s.subscribe(t, ctx, st, eventstore.SubscribeOptions{Stream: stream, AfterVersion: eventstore.EndVersion})
	if ds := endSub.caughtUp(t); len(ds) != 1 {
		t.Fatalf("stream subscription from EndVersion on a quiet store: deliveries %+v, want only caught up", ds)
	}
	streamAfter := func(after eventstore.Version) func([]eventstore.RecordedEvent) []eventstore.RecordedEvent {
		return func(all []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			var out []eventstore.RecordedEvent
			for _, r := range all {
				if r.Stream == stream && r.Version > after {
					out = append(out, r)
				}
			}
			return out
		}
	}
	cs := []*consumer{
		{name: "AfterVersion0", want: streamAfter(0), sub: s.subscribe(t, ctx, st, eventstore.SubscribeOptions{Stream: stream, PageSize: 5})},
		{name: "AfterVersionMiddle", want: streamAfter(v / 2), sub: s.subscribe(t, ctx, st, eventstore.SubscribeOptions{Stream: stream, AfterVersion: v / 2})},
		{name: "AfterVersionCurrent", want: streamAfter(v), sub: s.subscribe(t, ctx, st, eventstore.SubscribeOptions{Stream: stream, AfterVersion: v})},
	}
	// The sentinel goes to the stream itself.
	wait := runWriters(ctx, s.opts.Writers, s.opts.Events/2, loadWriter(st))
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { c.ds, c.err = c.sub.collectUntil(isDone) })
	}
	var endDs []eventstore.Delivery
	var endErr error
	wg.Go(func() { endDs, endErr = endSub.collectUntil(isDone) })
	err = wait()
	if err == nil {
		_, err = st.Append(ctx, stream, eventstore.Any, event(doneType))
	}
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	wg.Wait()
	all := readAll(t, ctx, st, eventstore.ReadAllOptions{})
	for _, c := range cs {
		if c.err != nil {
			t.Errorf("%s: %v", c.name, c.err)
		} else if err := checkDeliveries(c.ds, c.want(all), false); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if endErr != nil {
		t.Errorf("EndVersion: %v", endErr)
	} else if err := checkDeliveries(append([]eventstore.Delivery{{Kind: eventstore.DeliveredCaughtUp}}, endDs...), streamAfter(v)(all), false); err != nil {
		t.Errorf("EndVersion: %v", err)
	}
}

// checkpointFilters are filters that match stream "match-1" with type
// "Matched" and nothing else the checkpoint tests append.
var checkpointFilters = []struct {
	name string
	f    eventstore.Filter
}{
	{"Category", eventstore.Filter{Category: "match"}},
	{"EventTypes", eventstore.Filter{EventTypes: []string{"Matched", "AlsoMatched"}}},
	{"StreamPrefix", eventstore.Filter{StreamPrefix: "match-"}},
	{"CategoryAndType", eventstore.Filter{Category: "match", EventTypes: []string{"Matched"}}},
}

// testFilterCheckpoints checks that a filtered $all subscription delivers
// only matching events and, while only non-matching events commit, sends
// checkpoints at increasing positions; and that resuming from a checkpoint
// delivers the next match.
func (s *suite) testFilterCheckpoints(t *testing.T) {
	for _, tc := range checkpointFilters {
		t.Run(tc.name, func(t *testing.T) {
			ctx, st := s.ctx(t), s.store(t)
			match := func() eventstore.Position {
				return appendOK(t, ctx, st, "match-1", eventstore.Any, event("Matched")).Position
			}
			other := func() eventstore.Position {
				return appendOK(t, ctx, st, "other-1", eventstore.Any, event("Other")).Position
			}
			match()
			other()
			other()
			sub := s.subscribe(t, ctx, st, eventstore.SubscribeOptions{Filter: tc.f})
			var all []eventstore.Delivery
			take := func(ds []eventstore.Delivery, wantEvents ...eventstore.Position) {
				t.Helper()
				var got []eventstore.Position
				for _, d := range ds {
					if d.Kind == eventstore.DeliveredEvent {
						got = append(got, d.Position)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(wantEvents) {
					t.Fatalf("delivered events at %v, want %v (deliveries %+v)", got, wantEvents, ds)
				}
				all = append(all, ds...)
			}
			ds := sub.caughtUp(t)
			take(ds, 1)
			if cu := ds[len(ds)-1]; cu.Position != 3 {
				t.Errorf("caught up at %d, want 3", cu.Position)
			}
			checkpointAt := func(p eventstore.Position) func(eventstore.Delivery) bool {
				return func(d eventstore.Delivery) bool { return d.Kind == eventstore.DeliveredCheckpoint && d.Position >= p }
			}
			for range 5 {
				p := other()
				take(sub.until(t, checkpointAt(p)))
			}
			p := match()
			take(sub.until(t, func(d eventstore.Delivery) bool { return d.Kind == eventstore.DeliveredEvent }), p)
			other()
			p2 := other()
			take(sub.until(t, checkpointAt(p2)))

			// Positions of events and checkpoints only grow.
			var last eventstore.Position
			var cp eventstore.Position
			for _, d := range all {
				if d.Kind == eventstore.DeliveredCaughtUp {
					continue
				}
				if d.Position <= last {
					t.Errorf("delivery %+v after position %d", d, last)
				}
				last = d.Position
				if d.Kind == eventstore.DeliveredCheckpoint {
					cp = d.Position
				}
			}
			// Resume from the last checkpoint: the next match comes first.
			sub.stop()
			p3 := match()
			other()
			resumed := s.subscribe(t, ctx, st, eventstore.SubscribeOptions{Filter: tc.f, From: cp})
			if got := resumed.events(t, 1); got[0].Position != p3 {
				t.Errorf("resumed from checkpoint %d: first event at %d, want %d", cp, got[0].Position, p3)
			}
		})
	}
}

// checkpointWriter appends n events as writer w, one event in five to
// "match-w" (matching checkpointFilters), the others to "load-w".
func checkpointWriter(st *eventstore.Store) func(ctx context.Context, w, n int) error {
	return func(ctx context.Context, w, n int) error {
		for i := range n {
			stream, typ := eventstore.StreamID(fmt.Sprintf("load-%d", w)), "Loaded"
			if i%5 == 0 {
				stream, typ = eventstore.StreamID(fmt.Sprintf("match-%d", w)), "Matched"
			}
			if _, err := st.Append(ctx, stream, eventstore.Any, event(typ)); err != nil {
				return fmt.Errorf("writer %d: %w", w, err)
			}
		}
		return nil
	}
}

// testCheckpointResume stops a filtered subscription half way through a
// load at its last event or checkpoint, resumes from there, and checks that
// the two together delivered every match exactly once.
func (s *suite) testCheckpointResume(t *testing.T) {
	for _, tc := range checkpointFilters[:3] {
		t.Run(tc.name, func(t *testing.T) {
			ctx, st := s.ctx(t), s.store(t)
			total := s.opts.Events / 2
			wait := runWriters(ctx, s.opts.Writers, total, checkpointWriter(st))
			reported := func(p eventstore.Position) func(eventstore.Delivery) bool {
				return func(d eventstore.Delivery) bool { return d.Kind != eventstore.DeliveredCaughtUp && d.Position >= p }
			}
			first := s.subscribe(t, ctx, st, eventstore.SubscribeOptions{Filter: tc.f, PageSize: 16})
			ds1, err1 := first.collectUntil(reported(eventstore.Position(total / 2)))
			first.stop()
			if err1 != nil {
				t.Fatalf("first subscription: %v", err1)
			}
			resume := ds1[len(ds1)-1].Position
			second := s.subscribe(t, ctx, st, eventstore.SubscribeOptions{Filter: tc.f, From: resume, PageSize: 16})
			var ds2 []eventstore.Delivery
			var err2 error
			var wg sync.WaitGroup
			wg.Go(func() {
				// The sentinel does not match: the last report is a checkpoint.
				ds2, err2 = second.collectUntil(reported(eventstore.Position(total + 1)))
			})
			err := wait()
			if err == nil {
				_, err = st.Append(ctx, "done-1", eventstore.Any, event(doneType))
			}
			if err != nil {
				second.stop()
				wg.Wait()
				t.Fatalf("load: %v", err)
			}
			wg.Wait()
			if err2 != nil {
				t.Fatalf("resumed subscription: %v", err2)
			}
			var got []eventstore.Position
			for _, d := range append(ds1, ds2...) {
				if d.Kind == eventstore.DeliveredEvent {
					got = append(got, d.Position)
				}
			}
			want := positions(readAll(t, ctx, st, eventstore.ReadAllOptions{Filter: tc.f}))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("resumed at %d: delivered %d matches, want %d\n got %v\nwant %v", resume, len(got), len(want), got, want)
			}
		})
	}
}

// testSubscribeCancel checks that cancelling a subscription's context ends
// it with the context's error.
func (s *suite) testSubscribeCancel(t *testing.T) {
	for _, opts := range []eventstore.SubscribeOptions{
		{},
		{Filter: eventstore.Filter{Category: "order"}},
		{Stream: "order-1"},
	} {
		t.Run(subName(opts), func(t *testing.T) {
			ctx, st := s.ctx(t), s.store(t)
			appendOK(t, ctx, st, "order-1", eventstore.NoStream, event("OrderPlaced"))
			sub := s.subscribe(t, ctx, st, opts)
			sub.caughtUp(t)
			sub.cancel()
			if err := sub.end(t); !errors.Is(err, context.Canceled) {
				t.Errorf("subscription ended with %v, want context.Canceled", err)
			}
		})
	}
}

// testSubscribeClose checks that closing the store ends subscriptions with
// ErrClosed.
func (s *suite) testSubscribeClose(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	appendOK(t, ctx, st, "order-1", eventstore.NoStream, event("OrderPlaced"))
	var subs []*subscriber
	for _, opts := range []eventstore.SubscribeOptions{
		{}, {From: eventstore.End}, {Filter: eventstore.Filter{Category: "order"}}, {Stream: "order-1"}, {Stream: "order-2"},
	} {
		sub := s.subscribe(t, ctx, st, opts)
		sub.caughtUp(t)
		subs = append(subs, sub)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, sub := range subs {
		if err := sub.end(t); !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("subscription %d ended with %v, want ErrClosed", i, err)
		}
	}
}

// testSlowConsumer checks that a subscriber that stops pulling does not
// hold writers up, and that it later gets every event in order.
func (s *suite) testSlowConsumer(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	appendOK(t, ctx, st, "order-1", eventstore.NoStream, event("OrderPlaced"))
	const pageSize = 8
	sub := s.subscribe(t, ctx, st, eventstore.SubscribeOptions{PageSize: pageSize})
	streamSub := s.subscribe(t, ctx, st, eventstore.SubscribeOptions{Stream: "load-0", PageSize: pageSize})
	if got := sub.events(t, 1); got[0].Position != 1 {
		t.Fatalf("first event at %d, want 1", got[0].Position)
	}
	// Neither subscriber pulls while the writers append many pages.
	n := max(20*pageSize, s.opts.Events/4)
	if err := runWriters(ctx, s.opts.Writers, n, loadWriter(st))(); err != nil {
		t.Fatalf("writers held up by a subscriber that does not pull: %v", err)
	}
	h := head(t, ctx, st)
	ds := sub.until(t, func(d eventstore.Delivery) bool { return d.Kind == eventstore.DeliveredEvent && d.Position == h })
	var got []eventstore.Position
	for _, d := range ds {
		if d.Kind == eventstore.DeliveredEvent {
			got = append(got, d.Position)
		}
	}
	if err := checkContiguous(got, 2); err != nil {
		t.Errorf("slow consumer: %v", err)
	}
	want := versions(readStream(t, ctx, st, "load-0", eventstore.ReadStreamOptions{}))
	gotVersions := versions(streamSub.events(t, len(want)))
	if fmt.Sprint(gotVersions) != fmt.Sprint(want) {
		t.Errorf("slow stream consumer: versions %v, want %v", gotVersions, want)
	}
}

func subName(o eventstore.SubscribeOptions) string {
	switch {
	case o.Stream != "":
		return "Stream"
	case o.Filter.Category != "":
		return "Filtered"
	default:
		return "All"
	}
}
