package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/streamsql"
	"github.com/fjord-data/fjord/streamsql/pebblestate"
)

// SQLExtra is what push-fanout and the persistent scenarios measure
// besides the rate; the other scenarios leave it zero, and JSON omits it.
// Memory is in MiB (2^20 bytes), measured after a forced garbage
// collection that returns freed memory to the operating system.
type SQLExtra struct {
	// Subscribers of push-fanout's shared query, each of which received
	// DeliveredPerSubscriber changes.
	Subscribers            int `json:"subscribers,omitempty"`
	DeliveredPerSubscriber int `json:"delivered_per_subscriber,omitempty"`
	// Baseline is the rate to compare with: push-fanout's query with one
	// subscriber, persistent-throughput's query with the in-memory state
	// store. Ratio is EventsPerSec / BaselineEventsPerSec.
	BaselineEventsPerSec    float64 `json:"baseline_events_per_sec,omitempty"`
	BaselineEventsPerCPUSec float64 `json:"baseline_events_per_cpu_sec,omitempty"`
	Ratio                   float64 `json:"ratio,omitempty"`
	// QueryBusySeconds is the time push-fanout's query goroutine spent
	// processing and publishing batches (Hooks.OnBatch durations), with
	// the subscribers and with one (Baseline…).
	QueryBusySeconds         float64 `json:"query_busy_seconds,omitempty"`
	BaselineQueryBusySeconds float64 `json:"baseline_query_busy_seconds,omitempty"`
	// ExtraCPUNsPerDelivery is the CPU time the extra subscribers cost
	// per change each received: (CPU − baseline CPU) / ((subscribers − 1)
	// × changes per subscriber), in nanoseconds.
	ExtraCPUNsPerDelivery float64 `json:"extra_cpu_ns_per_delivery,omitempty"`
	// persistent-memory: a table of SmallKeys groups, whose heap beyond
	// the (tiny) state is OverheadHeapMB, and one of Keys groups, whose
	// heap is StateHeapMB (StateBytesPerKey a group) and whose Pebble
	// directory holds StateDiskMB. The RSS figures include what Pebble
	// allocates outside the Go heap.
	SmallKeys        int     `json:"small_keys,omitempty"`
	OverheadHeapMB   float64 `json:"overhead_heap_mb,omitempty"`
	OverheadRSSMB    float64 `json:"overhead_rss_mb,omitempty"`
	Keys             int     `json:"keys,omitempty"`
	StateHeapMB      float64 `json:"state_heap_mb,omitempty"`
	StateRSSMB       float64 `json:"state_rss_mb,omitempty"`
	StateBytesPerKey float64 `json:"state_bytes_per_key,omitempty"`
	StateDiskMB      float64 `json:"state_disk_mb,omitempty"`
}

// sqlEnv is a fresh in-memory event store and an engine running on it.
type sqlEnv struct {
	store *eventstore.Store
	e     *streamsql.Engine
	stop  func() error
}

// startSQL opens an engine on store (a fresh in-memory one when nil) and
// runs it until env.stop, which closes the engine (and its state) and a
// store it opened.
func startSQL(ctx context.Context, store *eventstore.Store, opts *streamsql.Options) (*sqlEnv, error) {
	own := store == nil
	if own {
		store = eventstore.New(memstore.New(), nil)
	}
	e, err := streamsql.New(store, opts)
	if err != nil {
		if own {
			store.Close()
		}
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	return &sqlEnv{store: store, e: e, stop: func() error {
		cancel()
		err := <-done
		err = errors.Join(err, e.Close())
		if own {
			err = errors.Join(err, store.Close())
		}
		return err
	}}, nil
}

// sqlFanout runs push-fanout: a push query shared by cfg.Subscribers
// subscribers, each reading its own iterator, over events appended while
// the clock runs, against the same query with one subscriber (the best of
// three rounds each).
func sqlFanout(ctx context.Context, cfg SQLConfig, r *SQLResult) error {
	events, subs, pass := cfg.events(200000), cmp.Or(cfg.Subscribers, 1000), cmp.Or(cfg.PassPercent, 1)
	// amount is i%1000; the query passes amount >= 1000-10×pass. The last
	// event (amount 1000, id "last") passes and ends each subscriber.
	threshold := 1000 - int(math.Round(pass*10))
	batches := make([][]eventstore.Event, 0, events/1000+1)
	for i := 0; i < events; i += 1000 {
		var evs []eventstore.Event
		for j := i; j < min(events, i+1000); j++ {
			id, amount := "o"+strconv.Itoa(j), j%1000
			if j == events-1 {
				id, amount = "last", 1000
			}
			evs = append(evs, eventstore.Event{Type: "Placed", Data: fmt.Appendf(nil,
				`{"id":%q,"customer":"customer-%d","amount":%d.5,"qty":%d,"region":"eu-west"}`, id, j%5000, amount, j%7+1)})
		}
		batches = append(batches, evs)
	}
	sql := fmt.Sprintf(`SELECT id, amount * qty AS total FROM orders WHERE amount >= %d EMIT CHANGES`, threshold)
	// The two runs alternate, bestOf times; each keeps its fastest
	// round, the one least disturbed by other work on the machine.
	var base, got fanoutFigures
	for round := range bestOf {
		b, err := fanoutRun(ctx, sql, batches, 1)
		if err != nil {
			return fmt.Errorf("one subscriber: %w", err)
		}
		g, err := fanoutRun(ctx, sql, batches, subs)
		if err != nil {
			return fmt.Errorf("%d subscribers: %w", subs, err)
		}
		if round == 0 || b.elapsed < base.elapsed {
			base = b
		}
		if round == 0 || g.elapsed < got.elapsed {
			got = g
		}
	}
	r.Events, r.Ops, r.Op = events, 1, fmt.Sprintf("event appended, filtered (%g%% pass), fanned out to every subscriber", pass)
	r.Seconds, r.CPUSeconds = got.elapsed.Seconds(), got.cpu
	r.EventsPerSec = float64(events) / r.Seconds
	r.Subscribers, r.DeliveredPerSubscriber = subs, got.delivered
	r.BaselineEventsPerSec = float64(events) / base.elapsed.Seconds()
	r.BaselineEventsPerCPUSec = float64(events) / base.cpu
	r.Ratio = r.EventsPerSec / r.BaselineEventsPerSec
	r.QueryBusySeconds, r.BaselineQueryBusySeconds = got.busy.Seconds(), base.busy.Seconds()
	if subs > 1 && got.delivered > 0 {
		r.ExtraCPUNsPerDelivery = (got.cpu - base.cpu) * 1e9 / float64((subs-1)*got.delivered)
	}
	return nil
}

// bestOf is how often push-fanout and persistent-throughput run each of
// their two runs, keeping the fastest.
const bestOf = 3

type fanoutFigures struct {
	elapsed, busy time.Duration
	cpu           float64
	delivered     int
}

// fanoutRun subscribes subs iterators to sql on a fresh engine, then
// appends the batches and times until every subscriber got the last one.
func fanoutRun(ctx context.Context, sql string, batches [][]eventstore.Event, subs int) (fanoutFigures, error) {
	var busy atomic.Int64
	env, err := startSQL(ctx, nil, &streamsql.Options{Hooks: streamsql.Hooks{OnBatch: func(b streamsql.BatchInfo) {
		busy.Add(int64(b.Duration))
	}}})
	if err != nil {
		return fanoutFigures{}, err
	}
	defer env.stop()
	if _, err := env.e.Exec(ctx, `CREATE STREAM orders (id STRING KEY, customer STRING, amount DOUBLE, qty INT) WITH (SOURCE='order-')`); err != nil {
		return fanoutFigures{}, err
	}
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	counts := make([]int, subs)
	errs := make(chan error, subs)
	for i := range subs {
		wg.Go(func() {
			for ch, err := range env.e.Query(qctx, sql, nil) {
				if err != nil {
					errs <- err
					return
				}
				counts[i]++
				if ch.Row[0] == "last" {
					return
				}
			}
			errs <- errors.New("the push query ended early")
		})
	}
	// Wait until every subscriber joined the one shared query.
	want := fmt.Sprintf("push (%d subscribers)", subs)
	for {
		res, err := env.e.Exec(ctx, "SHOW QUERIES")
		if err != nil {
			return fanoutFigures{}, err
		}
		if len(res.Rows) == 1 && res.Rows[0][1] == want {
			break
		}
		if len(res.Rows) > 1 {
			return fanoutFigures{}, fmt.Errorf("%d push queries run, want one shared", len(res.Rows))
		}
		select {
		case err := <-errs:
			return fanoutFigures{}, err
		case <-time.After(time.Millisecond):
		}
	}
	busy.Store(0)
	clk := startClock()
	for i, evs := range batches {
		if _, err := env.store.Append(ctx, eventstore.StreamID("order-"+strconv.Itoa(i%1000)), eventstore.Any, evs...); err != nil {
			return fanoutFigures{}, err
		}
	}
	wg.Wait()
	var f fanoutFigures
	var sr SQLResult
	f.elapsed = clk.stop(&sr)
	f.cpu, f.busy = sr.CPUSeconds, time.Duration(busy.Load())
	select {
	case err := <-errs:
		return f, err
	default:
	}
	f.delivered = counts[0]
	for i, n := range counts {
		if n != f.delivered {
			return f, fmt.Errorf("subscriber %d got %d changes, subscriber 0 %d", i, n, f.delivered)
		}
	}
	return f, nil
}

// sqlPersistentMemory runs persistent-memory: a persistent GROUP BY table
// with Pebble state over few keys, then over cfg.Keys keys (one event a
// key), measuring the heap (and RSS) the query adds to the process.
func sqlPersistentMemory(ctx context.Context, cfg SQLConfig, r *SQLResult) error {
	const small = 100
	keys := cmp.Or(cfg.Keys, 1000000)
	smallEvents := cfg.events(200000)
	few, err := persistentHeap(ctx, cfg.Dir, small, smallEvents)
	if err != nil {
		return fmt.Errorf("%d keys: %w", small, err)
	}
	many, err := persistentHeap(ctx, cfg.Dir, keys, keys)
	if err != nil {
		return fmt.Errorf("%d keys: %w", keys, err)
	}
	r.Events, r.Ops, r.Op = keys, 1, "event aggregated into its own group (Pebble state)"
	r.Seconds, r.CPUSeconds = many.elapsed.Seconds(), many.cpu
	r.EventsPerSec = float64(keys) / r.Seconds
	r.SmallKeys, r.OverheadHeapMB, r.OverheadRSSMB = small, few.heapMB, few.rssMB
	r.Keys, r.StateHeapMB, r.StateRSSMB, r.StateDiskMB = keys, many.heapMB, many.rssMB, many.diskMB
	r.StateBytesPerKey = many.heapMB * (1 << 20) / float64(keys)
	return nil
}

type heapFigures struct {
	elapsed               time.Duration
	cpu                   float64
	heapMB, rssMB, diskMB float64
}

// persistentHeap fills a fresh store with events over keys, then measures
// what a persistent GROUP BY table over them adds to the heap and RSS
// once it has caught up, and its Pebble directory's size.
func persistentHeap(ctx context.Context, parent string, keys, events int) (f heapFigures, err error) {
	dir, err := os.MkdirTemp(parent, "fjord-bench-sql-state-")
	if err != nil {
		return f, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	store := eventstore.New(memstore.New(), nil)
	defer store.Close()
	if err := fillSQL(ctx, store, "click", events, func(i int) []byte {
		return fmt.Appendf(nil, `{"k":"key-%d","v":%d}`, i%keys, i%13)
	}); err != nil {
		return f, err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return f, err
	}
	rss0, _, heap0, err := memory()
	if err != nil {
		return f, err
	}
	st, err := pebblestate.Open(dir, nil)
	if err != nil {
		return f, err
	}
	env, err := startSQL(ctx, store, &streamsql.Options{State: st})
	if err != nil {
		st.Close()
		return f, err
	}
	defer func() { err = errors.Join(err, env.stop()) }()
	if _, err := env.e.Exec(ctx, `CREATE STREAM clicks (k STRING, v BIGINT) WITH (SOURCE='click-')`); err != nil {
		return f, err
	}
	clk := startClock()
	res, err := env.e.Exec(ctx, `CREATE TABLE totals AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM clicks GROUP BY k EMIT CHANGES`)
	if err != nil {
		return f, err
	}
	if err := env.e.WaitFor(ctx, res.QueryID, head); err != nil {
		return f, err
	}
	var sr SQLResult
	f.elapsed = clk.stop(&sr)
	f.cpu = sr.CPUSeconds
	n := 0
	for _, err := range env.e.Query(ctx, `SELECT * FROM totals WHERE k = 'key-0'`, nil) {
		if err != nil {
			return f, err
		}
		n++
	}
	if n != 1 {
		return f, fmt.Errorf("key-0 has %d rows, want 1", n)
	}
	rss1, _, heap1, err := memory()
	if err != nil {
		return f, err
	}
	f.heapMB, f.rssMB = heap1-heap0, rss1-rss0
	size, err := dirSize(dir)
	f.diskMB = float64(size) / (1 << 20)
	return f, err
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	return n, err
}

// sqlPersistentThroughput runs persistent-throughput: a persistent GROUP
// BY table over 10,000 keys catching up with pre-filled events, with its
// state and position committed to Pebble after every batch, against the
// same with the in-memory state store (the best of three rounds each).
func sqlPersistentThroughput(ctx context.Context, cfg SQLConfig, r *SQLResult) error {
	events := cfg.events(500000)
	store := eventstore.New(memstore.New(), nil)
	defer store.Close()
	if err := fillSQL(ctx, store, "click", events, func(i int) []byte {
		return fmt.Appendf(nil, `{"k":"key-%d","v":%d}`, i%10000, i%13)
	}); err != nil {
		return err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	run := func(pebble bool) (time.Duration, float64, error) {
		var opts streamsql.Options
		if pebble {
			dir, err := os.MkdirTemp(cfg.Dir, "fjord-bench-sql-state-")
			if err != nil {
				return 0, 0, err
			}
			defer os.RemoveAll(dir)
			if opts.State, err = pebblestate.Open(dir, nil); err != nil {
				return 0, 0, err
			}
		}
		env, err := startSQL(ctx, store, &opts)
		if err != nil {
			if opts.State != nil {
				opts.State.Close()
			}
			return 0, 0, err
		}
		defer env.stop()
		if _, err := env.e.Exec(ctx, `CREATE STREAM clicks (k STRING, v BIGINT) WITH (SOURCE='click-')`); err != nil {
			return 0, 0, err
		}
		clk := startClock()
		res, err := env.e.Exec(ctx, `CREATE TABLE totals AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM clicks GROUP BY k EMIT CHANGES`)
		if err == nil {
			err = env.e.WaitFor(ctx, res.QueryID, head)
		}
		var sr SQLResult
		elapsed := clk.stop(&sr)
		return elapsed, sr.CPUSeconds, err
	}
	// As in push-fanout, the two runs alternate and each keeps its
	// fastest round.
	var memElapsed, elapsed time.Duration
	var memCPU, cpu float64
	for round := range bestOf {
		me, mc, err := run(false)
		if err != nil {
			return fmt.Errorf("in-memory state: %w", err)
		}
		pe, pc, err := run(true)
		if err != nil {
			return fmt.Errorf("pebble state: %w", err)
		}
		if round == 0 || me < memElapsed {
			memElapsed, memCPU = me, mc
		}
		if round == 0 || pe < elapsed {
			elapsed, cpu = pe, pc
		}
	}
	r.Events, r.Ops, r.Op = events, 1, "event aggregated (10,000 keys), state + position committed to Pebble per batch"
	r.Seconds, r.CPUSeconds = elapsed.Seconds(), cpu
	r.EventsPerSec = float64(events) / r.Seconds
	r.BaselineEventsPerSec = float64(events) / memElapsed.Seconds()
	r.BaselineEventsPerCPUSec = float64(events) / memCPU
	r.Ratio = r.EventsPerSec / r.BaselineEventsPerSec
	return nil
}
