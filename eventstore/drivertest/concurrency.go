package drivertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/fjord-data/fjord/eventstore"
)

// attempt is one writer's try at appending at a version.
type attempt struct {
	expected eventstore.Version
	id       uuid.UUID
	res      eventstore.AppendResult
	err      error
}

// streamVersion returns a stream's version, 0 when it does not exist.
func streamVersion(ctx context.Context, st *eventstore.Store, stream eventstore.StreamID) (eventstore.Version, error) {
	info, err := st.StreamInfo(ctx, stream)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return 0, nil
	}
	return info.Version, err
}

// tryAppend appends one event to stream expecting version v.
func tryAppend(ctx context.Context, st *eventstore.Store, stream eventstore.StreamID, v eventstore.Version) attempt {
	e := event("Raced")
	res, err := st.Append(ctx, stream, eventstore.Exact(v), e)
	return attempt{expected: v, id: e.ID, res: res, err: err}
}

// testRacingWritersRounds runs rounds in which every writer reads the
// stream's version, waits for the others to have read it too, and appends
// expecting it: exactly one wins each round, and every other writer gets a
// *VersionError with the winner's version as Actual.
func (s *suite) testRacingWritersRounds(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	const stream = "race-1"
	writers, rounds := max(2, s.opts.Writers), 16
	var winners []uuid.UUID
	for round := range rounds {
		var read, wg sync.WaitGroup
		read.Add(writers)
		start := make(chan struct{})
		results := make([]attempt, writers)
		for w := range writers {
			wg.Go(func() {
				v, err := streamVersion(ctx, st, stream)
				read.Done()
				if err != nil {
					results[w] = attempt{err: err}
					return
				}
				<-start
				results[w] = tryAppend(ctx, st, stream, v)
			})
		}
		read.Wait()
		close(start)
		wg.Wait()
		v := eventstore.Version(round)
		var won []attempt
		for _, a := range results {
			switch {
			case a.err == nil:
				won = append(won, a)
			case errors.Is(a.err, eventstore.ErrWrongVersion):
				wantVersionError(t, a.err, eventstore.VersionError{Stream: stream, Expected: eventstore.Exact(v), Actual: v + 1})
			default:
				t.Fatalf("round %d: %v", round, a.err)
			}
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %d writers won, want exactly 1", round, len(won))
		}
		if won[0].expected != v || won[0].res.Version != v+1 {
			t.Fatalf("round %d: winner expected %d and got version %d, want %d and %d", round, won[0].expected, won[0].res.Version, v, v+1)
		}
		winners = append(winners, won[0].id)
	}
	var got []uuid.UUID
	for _, r := range readStream(t, ctx, st, stream, eventstore.ReadStreamOptions{}) {
		got = append(got, r.ID)
	}
	if diff := cmp.Diff(winners, got); diff != "" {
		t.Errorf("stream events are not the winners' (-winners +stream):\n%s", diff)
	}
}

// testRacingWriters lets writers race freely on one stream, each reading
// the version and appending with Exact until the stream reaches k events:
// every version is won exactly once, the stream holds the winners' events at
// versions 1..k, and every loser got ErrWrongVersion.
func (s *suite) testRacingWriters(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	const stream = "race-1"
	k := eventstore.Version(max(16, s.opts.Events/4))
	var mu sync.Mutex
	won := map[eventstore.Version]uuid.UUID{}
	losses := 0
	wait := runWriters(ctx, max(2, s.opts.Writers), 0, func(ctx context.Context, w, _ int) error {
		for {
			v, err := streamVersion(ctx, st, stream)
			if err != nil || v >= k {
				return err
			}
			a := tryAppend(ctx, st, stream, v)
			var ve *eventstore.VersionError
			switch {
			case a.err == nil:
				mu.Lock()
				prev, dup := won[a.res.Version]
				won[a.res.Version] = a.id
				mu.Unlock()
				if dup {
					return fmt.Errorf("version %d won twice (%s and %s)", a.res.Version, prev, a.id)
				}
				if a.res.Version != v+1 {
					return fmt.Errorf("append expecting %d made version %d", v, a.res.Version)
				}
			case errors.As(a.err, &ve) && errors.Is(a.err, eventstore.ErrWrongVersion):
				if ve.Actual <= v || ve.Expected != eventstore.Exact(v) {
					return fmt.Errorf("append expecting %d: %+v, want a later actual version", v, *ve)
				}
				mu.Lock()
				losses++
				mu.Unlock()
			default:
				return fmt.Errorf("append expecting %d: %w", v, a.err)
			}
		}
	})
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	recs := readStream(t, ctx, st, stream, eventstore.ReadStreamOptions{})
	if diff := cmp.Diff(span(1, k), versions(recs)); diff != "" {
		t.Fatalf("stream versions (-want +got):\n%s", diff)
	}
	if len(won) != int(k) {
		t.Errorf("%d versions won, want %d", len(won), k)
	}
	for _, r := range recs {
		if won[r.Version] != r.ID {
			t.Errorf("version %d holds %s, but %s won it", r.Version, r.ID, won[r.Version])
		}
	}
	t.Logf("%d appends won, %d lost", len(won), losses)
}

// testGaplessUnderLoad runs writers (single and multi-stream appends)
// against concurrent $all readers and subscribers, which must only ever see
// positions 1..n contiguous, every record at or below the head they
// observed, and no batch torn.
func (s *suite) testGaplessUnderLoad(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	cs := []*consumer{
		{name: "Subscriber1", all: true, sub: s.subscribe(t, ctx, st, eventstore.SubscribeOptions{})},
		{name: "Subscriber2", all: true, sub: s.subscribe(t, ctx, st, eventstore.SubscribeOptions{PageSize: 3})},
	}
	for _, c := range cs {
		c.want = func(all []eventstore.RecordedEvent) []eventstore.RecordedEvent { return all }
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readerErrs := make([]error, 3)
	readers.Go(func() { readerErrs[0] = forwardReader(ctx, st, stop) })
	readers.Go(func() { readerErrs[1] = forwardReader(ctx, st, stop) })
	readers.Go(func() { readerErrs[2] = backwardReader(ctx, st, stop) })
	wait := runWriters(ctx, s.opts.Writers, s.opts.Events, loadWriter(st))
	s.consume(t, ctx, st, cs, func() error {
		err := wait()
		close(stop)
		readers.Wait()
		return err
	})
	for i, err := range readerErrs {
		if err != nil {
			t.Errorf("reader %d: %v", i, err)
		}
	}
	all := readAll(t, ctx, st, eventstore.ReadAllOptions{})
	if err := checkBatches(all); err != nil {
		t.Errorf("final $all: %v", err)
	}
	for _, c := range cs {
		var recs []eventstore.RecordedEvent
		for _, d := range c.ds {
			if d.Kind == eventstore.DeliveredEvent {
				recs = append(recs, d.Event)
			}
		}
		if err := checkBatches(recs); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// Each stream's versions grow with positions.
	last := map[eventstore.StreamID]eventstore.Version{}
	for _, r := range all {
		if r.Version != last[r.Stream]+1 {
			t.Fatalf("stream %s: version %d at position %d after version %d", r.Stream, r.Version, r.Position, last[r.Stream])
		}
		last[r.Stream] = r.Version
	}
}

// forwardReader reads $all incrementally until stop is closed (then once
// more): each read must continue exactly where the last ended, reach at
// least the head observed before it, and end on a batch boundary.
func forwardReader(ctx context.Context, st *eventstore.Store, stop <-chan struct{}) error {
	var seen []eventstore.RecordedEvent
	for done := false; !done; {
		select {
		case <-stop:
			done = true
		default:
		}
		h, err := st.Head(ctx)
		if err != nil {
			return err
		}
		from := eventstore.Position(len(seen)) + 1
		recs, err := collect(st.ReadAll(ctx, eventstore.ReadAllOptions{From: from}))
		if err != nil {
			return err
		}
		if err := checkContiguous(positions(recs), from); err != nil {
			return fmt.Errorf("ReadAll from %d: %w", from, err)
		}
		seen = append(seen, recs...)
		if eventstore.Position(len(seen)) < h {
			return fmt.Errorf("ReadAll from %d ended at %d, below the head %d observed before it", from, len(seen), h)
		}
		if err := checkBatches(seen); err != nil {
			return fmt.Errorf("after ReadAll from %d: %w", from, err)
		}
	}
	return nil
}

// backwardReader reads the last events of $all backwards until stop is
// closed: they must be contiguous, start at or above the head observed
// before, and reach down to position 1 or the limit.
func backwardReader(ctx context.Context, st *eventstore.Store, stop <-chan struct{}) error {
	const limit = 50
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		h, err := st.Head(ctx)
		if err != nil {
			return err
		}
		recs, err := collect(st.ReadAll(ctx, eventstore.ReadAllOptions{Backwards: true, Limit: limit}))
		if err != nil {
			return err
		}
		ps := reverse(positions(recs))
		if len(ps) == 0 {
			if h > 0 {
				return fmt.Errorf("backwards read found nothing with the head at %d", h)
			}
			continue
		}
		if err := checkContiguous(ps, ps[0]); err != nil {
			return fmt.Errorf("backwards read: %w", err)
		}
		if top := ps[len(ps)-1]; top < h || (len(ps) < limit && ps[0] != 1) {
			return fmt.Errorf("backwards read returned %d..%d with the head at %d", ps[0], top, h)
		}
	}
}
