package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fjord-data/fjord/eventstore"
)

type params struct {
	events  int       // events the scenario appends, reads or delivers
	streams int       // streams they spread over
	payload []byte    // every event's data
	dir     *storeDir // where s lives, to close and reopen it
}

type scenario struct {
	name    string
	events  int    // default event count
	streams int    // default stream count; 0 means 100,000
	long    bool   // run only when named
	op      string // what one timed operation is
	run     func(ctx context.Context, s *eventstore.Store, p params) (Result, error)
}

// streamPageSize is how many events one timed read of $all returns: the
// page size subscriptions catch up with.
const streamPageSize = 512

var scenarios = []scenario{
	{name: "single-64w", events: 200_000, op: "append",
		run: func(ctx context.Context, s *eventstore.Store, p params) (Result, error) {
			return appendLoad(ctx, s, p, 64, 1)
		}},
	{name: "batch100-8w", events: 1_000_000, op: "append",
		run: func(ctx context.Context, s *eventstore.Store, p params) (Result, error) {
			return appendLoad(ctx, s, p, 8, 100)
		}},
	{name: "single-1w", events: 10_000, op: "append",
		run: func(ctx context.Context, s *eventstore.Store, p params) (Result, error) {
			return appendLoad(ctx, s, p, 1, 1)
		}},
	{name: "read-all", events: 1_000_000, op: "page of " + strconv.Itoa(streamPageSize), run: readAll},
	{name: "read-stream", events: 1_000_000, op: "stream load", run: readStream},
	{name: "subscribe-latency", events: 10_000, op: "delivery", run: subscribeLatency},
	{name: "scale", events: 10_000_000, streams: 1_000_000, long: true, op: "append", run: scale},
}

func streamName(i int) eventstore.StreamID { return eventstore.StreamID("bench-" + strconv.Itoa(i)) }

func events(n int, data []byte) []eventstore.Event {
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = eventstore.Event{Type: "BenchEvent", Data: data}
	}
	return evs
}

// firstError keeps the first error of several goroutines and cancels
// their context when it happens.
type firstError struct {
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

func (f *firstError) set(err error) {
	f.once.Do(func() { f.err = err; f.cancel() })
}

// appendLoad runs writers goroutines that append perAppend events at a
// time, each waiting for its acknowledgement, until p.events are written.
// Append i goes to stream i mod p.streams.
func appendLoad(ctx context.Context, s *eventstore.Store, p params, writers, perAppend int) (Result, error) {
	appends := (p.events + perAppend - 1) / perAppend
	lat := make(latencies, appends)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := &firstError{cancel: cancel}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range writers {
		wg.Go(func() {
			evs := events(perAppend, p.payload)
			for {
				i := int(next.Add(1) - 1)
				if i >= appends || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				_, err := s.Append(ctx, streamName(i%p.streams), eventstore.Any, evs...)
				lat[i] = time.Since(t0)
				if err != nil {
					fail.set(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if fail.err != nil {
		return Result{}, fail.err
	}
	r := Result{Events: appends * perAppend, Writers: writers}
	lat.summarize(&r, elapsed)
	return r, nil
}

// populate appends total events in batches of 1,000 from 4 writers, event
// e going to stream streamOf(e). It is not timed.
func populate(ctx context.Context, s *eventstore.Store, total int, data []byte, streamOf func(e int) int) error {
	const batch, writers = 1000, 4
	batches := (total + batch - 1) / batch
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := &firstError{cancel: cancel}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			evs := events(batch, data)
			for {
				b := int(next.Add(1) - 1)
				if b >= batches || ctx.Err() != nil {
					return
				}
				lo, hi := b*batch, min((b+1)*batch, total)
				if _, err := s.AppendMulti(ctx, group(lo, hi, evs, streamOf)...); err != nil {
					fail.set(fmt.Errorf("populating: %w", err))
					return
				}
			}
		})
	}
	wg.Wait()
	return fail.err
}

// group turns events lo..hi-1 into one StreamAppend per stream.
func group(lo, hi int, evs []eventstore.Event, streamOf func(e int) int) []eventstore.StreamAppend {
	index := make(map[int]int) // stream → index in out
	var out []eventstore.StreamAppend
	for e := lo; e < hi; e++ {
		st := streamOf(e)
		i, ok := index[st]
		if !ok {
			i = len(out)
			index[st] = i
			out = append(out, eventstore.StreamAppend{Stream: streamName(st), Expected: eventstore.Any, Events: evs[:0]})
		}
		out[i].Events = evs[:len(out[i].Events)+1]
	}
	return out
}

// readAll pre-populates p.events events, then reads $all from the start in
// pages, timing each page.
func readAll(ctx context.Context, s *eventstore.Store, p params) (Result, error) {
	if err := populate(ctx, s, p.events, p.payload, func(e int) int { return e % p.streams }); err != nil {
		return Result{}, err
	}
	lat := make(latencies, p.events/streamPageSize+2)
	ops, total := 0, 0
	from := eventstore.Position(1)
	start := time.Now()
	for {
		t0 := time.Now()
		n := 0
		for e, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{From: from, Limit: streamPageSize}) {
			if err != nil {
				return Result{}, err
			}
			n++
			from = e.Position + 1
		}
		lat[ops] = time.Since(t0)
		ops++
		total += n
		if n < streamPageSize || ops == len(lat) {
			break
		}
	}
	elapsed := time.Since(start)
	if total != p.events {
		return Result{}, fmt.Errorf("read %d events of $all, want %d", total, p.events)
	}
	r := Result{Events: total}
	lat[:ops].summarize(&r, elapsed)
	return r, nil
}

// readStream pre-populates streams of 100 events, then loads streams
// chosen at random, as many loads as there are streams, timing each load.
func readStream(ctx context.Context, s *eventstore.Store, p params) (Result, error) {
	const perStream = 100
	nstreams := max(p.events/perStream, 1)
	if err := populate(ctx, s, nstreams*perStream, p.payload, func(e int) int { return e / perStream }); err != nil {
		return Result{}, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make(latencies, nstreams)
	total := 0
	start := time.Now()
	for i := range lat {
		stream := streamName(rng.IntN(nstreams))
		t0 := time.Now()
		n := 0
		for _, err := range s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}) {
			if err != nil {
				return Result{}, err
			}
			n++
		}
		lat[i] = time.Since(t0)
		if n != perStream {
			return Result{}, fmt.Errorf("stream %s has %d events, want %d", stream, n, perStream)
		}
		total += n
	}
	elapsed := time.Since(start)
	r := Result{Events: total}
	lat.summarize(&r, elapsed)
	return r, nil
}
