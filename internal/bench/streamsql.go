package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/streamsql"
)

// SQLScenarios are the scenarios of `fjord bench sql`.
func SQLScenarios() []string {
	return []string{"filter-project", "tumbling-10k", "pull-lookup", "push-delivery",
		"push-fanout", "persistent-memory", "persistent-throughput"}
}

// SQLConfig sizes the streaming SQL scenarios. The zero value takes each
// scenario's defaults.
type SQLConfig struct {
	// Events per scenario (default 1,000,000 for filter-project,
	// tumbling-10k and pull-lookup's fill; see SQL for the others).
	Events int
	// Ops for pull-lookup and push-delivery (default 20,000).
	Ops int
	// Subscribers of push-fanout's shared query (default 1,000).
	Subscribers int
	// PassPercent is the share of events push-fanout's query passes
	// (0.1 to 100, in steps of 0.1; default 1).
	PassPercent float64
	// Keys is persistent-memory's large table (default 1,000,000).
	Keys int
	// Dir is where persistent scenarios make their Pebble directories;
	// "" is os.TempDir().
	Dir string
}

func (c SQLConfig) events(def int) int { return cmp.Or(c.Events, def) }

// SQL runs one streaming SQL scenario on a fresh in-memory store (so that
// the figures are the engine's, not the store's):
//
//   - filter-project: events JSON objects of six fields (about 130
//     bytes) are appended first; the clock covers a push query from the
//     start that decodes four columns, filters half the events out and
//     projects three expressions, until its LIMIT (the number of matches).
//   - tumbling-10k: a GROUP BY over 10,000 keys in one-minute tumbling
//     windows (event time from the data, 1 ms apart), COUNT and SUM,
//     EMIT CHANGES: one output change per event.
//   - pull-lookup: a CREATE TABLE … AS SELECT over events spread over
//     10,000 keys, then ops key lookups by pull query, each timed.
//   - push-delivery: one push query; each of ops events is appended after
//     the previous one arrived, and timed from before the append to its
//     delivery.
//   - push-fanout: one push query shared by cfg.Subscribers iterators
//     against the same with one (SQLExtra.Ratio); events (default 200,000)
//     are appended while the clock runs, cfg.PassPercent of them pass.
//   - persistent-memory: a persistent GROUP BY table with Pebble state
//     over 100 keys (events, default 200,000), then over cfg.Keys keys
//     (one event a key): the heap it adds, and its Pebble directory.
//   - persistent-throughput: a persistent GROUP BY table over 10,000 keys
//     catching up with events (default 500,000), Pebble state against the
//     in-memory state store (SQLExtra.Ratio).
//
// Besides the wall-clock rate, each result has the CPU time the process
// used while the clock ran, and the rate per CPU-second: on a machine
// shared with other work, that is the per-core figure.
func SQL(ctx context.Context, scenario string, cfg SQLConfig) (SQLResult, error) {
	if cfg.Events < 0 || cfg.Ops < 0 || cfg.Subscribers < 0 || cfg.Keys < 0 || cfg.PassPercent < 0 || cfg.PassPercent > 100 || cfg.PassPercent > 0 && cfg.PassPercent < 0.1 {
		return SQLResult{}, errors.New("bench sql: sizes must not be negative, and the pass percentage between 0.1 and 100")
	}
	cfg.Ops = cmp.Or(cfg.Ops, 20000)
	return runSQL(ctx, scenario, cfg)
}

// SQLResult is a Result with the CPU time used while the clock ran.
type SQLResult struct {
	Result
	CPUSeconds      float64 `json:"cpu_seconds"`
	EventsPerCPUSec float64 `json:"events_per_cpu_sec"`
	SQLExtra
}

func runSQL(ctx context.Context, scenario string, cfg SQLConfig) (SQLResult, error) {
	switch scenario {
	case "push-fanout", "persistent-memory", "persistent-throughput":
		// These make their own stores and engines (several per run).
		r := &SQLResult{Result: Result{Scenario: scenario}}
		var err error
		switch scenario {
		case "push-fanout":
			err = sqlFanout(ctx, cfg, r)
		case "persistent-memory":
			err = sqlPersistentMemory(ctx, cfg, r)
		default:
			err = sqlPersistentThroughput(ctx, cfg, r)
		}
		if r.CPUSeconds > 0 {
			r.EventsPerCPUSec = float64(r.Events) / r.CPUSeconds
		}
		return *r, err
	}
	events, ops := cfg.events(1000000), cfg.Ops
	store := eventstore.New(memstore.New(), nil)
	defer store.Close()
	e, err := streamsql.New(store, nil)
	if err != nil {
		return SQLResult{}, err
	}
	defer e.Close()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	r := &SQLResult{Result: Result{Scenario: scenario}}
	switch scenario {
	case "filter-project":
		err = sqlFilterProject(ctx, e, store, events, r)
	case "tumbling-10k":
		err = sqlTumbling(ctx, e, store, events, r)
	case "pull-lookup":
		err = sqlPull(ctx, e, store, events, ops, r)
	case "push-delivery":
		err = sqlPush(ctx, e, store, ops, r)
	default:
		err = fmt.Errorf("unknown scenario %q (known: %v)", scenario, SQLScenarios())
	}
	if r.CPUSeconds > 0 {
		r.EventsPerCPUSec = float64(r.Events) / r.CPUSeconds
	}
	return *r, err
}

// clock measures wall and CPU time from its creation.
type clock struct {
	wall time.Time
	cpu  time.Duration
}

func startClock() clock { return clock{time.Now(), cpuTime()} }

// stop records the CPU time used since the start and returns the wall
// time.
func (c clock) stop(r *SQLResult) time.Duration {
	elapsed := time.Since(c.wall)
	r.CPUSeconds = (cpuTime() - c.cpu).Seconds()
	return elapsed
}

// fill appends n events made by data to streams "<category>-<i%1000>",
// 1,000 events per append.
func fillSQL(ctx context.Context, store *eventstore.Store, category string, n int, data func(i int) []byte) error {
	const per = 1000
	for i := 0; i < n; i += per {
		var evs []eventstore.Event
		for j := i; j < min(n, i+per); j++ {
			evs = append(evs, eventstore.Event{Type: "Placed", Data: data(j)})
		}
		if _, err := store.Append(ctx, eventstore.StreamID(category+"-"+strconv.Itoa(i/per%1000)), eventstore.Any, evs...); err != nil {
			return err
		}
	}
	return nil
}

// drain runs a push query from the start until it ends (its LIMIT) and
// counts its changes.
func drain(ctx context.Context, e *streamsql.Engine, sql string) (int, error) {
	n := 0
	for _, err := range e.Query(ctx, sql, &streamsql.QueryOptions{FromStart: true}) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func sqlFilterProject(ctx context.Context, e *streamsql.Engine, store *eventstore.Store, events int, r *SQLResult) error {
	if _, err := e.Exec(ctx, `CREATE STREAM orders (id STRING KEY, customer STRING, amount DOUBLE, qty INT) WITH (SOURCE='order-')`); err != nil {
		return err
	}
	matches := 0
	err := fillSQL(ctx, store, "order", events, func(i int) []byte {
		amount := float64(i%100) + 0.5
		if amount > 50 {
			matches++
		}
		return fmt.Appendf(nil, `{"id":"o%d","customer":"customer-%d","amount":%.1f,"qty":%d,"region":"eu-west","note":"standard delivery"}`,
			i, i%5000, amount, i%7+1)
	})
	if err != nil {
		return err
	}
	clk := startClock()
	n, err := drain(ctx, e, fmt.Sprintf(`SELECT id, UCASE(customer) AS c, amount * qty AS total FROM orders WHERE amount > 50 EMIT CHANGES LIMIT %d`, matches))
	elapsed := clk.stop(r)
	if err == nil && n != matches {
		err = fmt.Errorf("got %d rows, want %d", n, matches)
	}
	r.Events, r.Op = events, "event decoded, filtered, projected"
	latencies(nil).summarize(&r.Result, elapsed)
	r.Ops = 1
	return err
}

func sqlTumbling(ctx context.Context, e *streamsql.Engine, store *eventstore.Store, events int, r *SQLResult) error {
	if _, err := e.Exec(ctx, `CREATE STREAM clicks (k STRING, v BIGINT, at BIGINT) WITH (SOURCE='click-', TIMESTAMP='at')`); err != nil {
		return err
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	err := fillSQL(ctx, store, "click", events, func(i int) []byte {
		return fmt.Appendf(nil, `{"k":"key-%d","v":%d,"at":%d}`, i%10000, i%13, base+int64(i))
	})
	if err != nil {
		return err
	}
	clk := startClock()
	n, err := drain(ctx, e, fmt.Sprintf(`SELECT k, COUNT(*) AS n, SUM(v) AS total FROM clicks WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY k EMIT CHANGES LIMIT %d`, events))
	elapsed := clk.stop(r)
	if err == nil && n != events {
		err = fmt.Errorf("got %d changes, want %d", n, events)
	}
	r.Events, r.Op = events, "event aggregated (one change out)"
	latencies(nil).summarize(&r.Result, elapsed)
	r.Ops = 1
	return err
}

func sqlPull(ctx context.Context, e *streamsql.Engine, store *eventstore.Store, events, ops int, r *SQLResult) error {
	if _, err := e.Exec(ctx, `CREATE STREAM orders (customer STRING, amount DOUBLE) WITH (SOURCE='order-')`); err != nil {
		return err
	}
	res, err := e.Exec(ctx, `CREATE TABLE totals AS SELECT customer, COUNT(*) AS n, SUM(amount) AS total FROM orders GROUP BY customer EMIT CHANGES`)
	if err != nil {
		return err
	}
	if err := fillSQL(ctx, store, "order", events, func(i int) []byte {
		return fmt.Appendf(nil, `{"customer":"c%d","amount":%d}`, i%10000, i%100)
	}); err != nil {
		return err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	if err := e.WaitFor(ctx, res.QueryID, head); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make(latencies, ops)
	clk := startClock()
	for i := range lat {
		sql := "SELECT * FROM totals WHERE customer = 'c" + strconv.Itoa(rng.IntN(min(events, 10000))) + "'"
		t0 := time.Now()
		n := 0
		for _, err := range e.Query(ctx, sql, nil) {
			if err != nil {
				return err
			}
			n++
		}
		lat[i] = time.Since(t0)
		if n != 1 {
			return fmt.Errorf("%s: %d rows", sql, n)
		}
	}
	r.Events, r.Op = ops, "pull query by key (parse, plan, lookup)"
	lat.summarize(&r.Result, clk.stop(r))
	return nil
}

func sqlPush(ctx context.Context, e *streamsql.Engine, store *eventstore.Store, ops int, r *SQLResult) error {
	if _, err := e.Exec(ctx, `CREATE STREAM pings (n BIGINT) WITH (SOURCE='ping-')`); err != nil {
		return err
	}
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next, stop := iter.Pull2(e.Query(qctx, `SELECT n FROM pings EMIT CHANGES`, nil))
	defer stop()
	// The query starts (at the store's head) when first pulled: pull the
	// first delivery in the background and append once it runs.
	first := make(chan error, 1)
	go func() {
		_, err, ok := next()
		if err == nil && !ok {
			err = errors.New("push query ended")
		}
		first <- err
	}()
	for e.RunningPushQueries() == 0 {
		time.Sleep(time.Millisecond)
	}
	lat := make(latencies, ops)
	clk := startClock()
	for i := range lat {
		t0 := time.Now()
		if _, err := store.Append(ctx, "ping-1", eventstore.Any, eventstore.Event{Type: "Ping", Data: fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
			return err
		}
		var err error
		if i == 0 {
			err = <-first
		} else if _, err2, ok := next(); err2 != nil || !ok {
			err = fmt.Errorf("push query ended: %v", err2)
		}
		if err != nil {
			return err
		}
		lat[i] = time.Since(t0)
	}
	r.Events, r.Op = ops, "append → push delivery"
	lat.summarize(&r.Result, clk.stop(r))
	return nil
}
