package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/fjord-data/fjord/eventstore"
)

// Open opens a store in dir, a fresh empty directory that the scenario
// owns. The scenario closes the store.
type Open func(dir string) (*eventstore.Store, error)

// Config selects scenarios and sizes. The zero value runs every scenario
// with its default sizes.
type Config struct {
	// Scenarios to run, in this order; empty runs those that run by
	// default (see DefaultScenarios).
	Scenarios []string
	// Events per scenario; 0 takes each scenario's default.
	Events int
	// Streams is how many streams the events spread over; 0 takes each
	// scenario's default (100,000; 1,000,000 for scale). read-stream
	// ignores it: its streams have 100 events each.
	Streams int
	// EventSize is the size of each event's data in bytes (default 256).
	EventSize int
	// Dir is where scenario directories are created; "" is os.TempDir().
	Dir string
	// Keep keeps each scenario's data directory instead of removing it.
	Keep bool
	// OnResult, if set, is called as each scenario finishes.
	OnResult func(Result)
}

// UnknownScenarioError names a scenario that does not exist.
type UnknownScenarioError struct{ Name string }

func (e *UnknownScenarioError) Error() string {
	return fmt.Sprintf("unknown scenario %q (known: %s)", e.Name, strings.Join(Scenarios(), ", "))
}

// Scenarios returns the names of all event store scenarios, in order.
func Scenarios() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return names
}

// DefaultScenarios returns the names of the scenarios EventStore runs when
// Config.Scenarios is empty, in order: all but the long ones, which run only
// when named.
func DefaultScenarios() []string {
	var names []string
	for _, s := range scenarios {
		if !s.long {
			names = append(names, s.name)
		}
	}
	return names
}

// DefaultEvents returns a scenario's default event count, or 0 when there
// is no such scenario.
func DefaultEvents(name string) int {
	if s, ok := lookup(name); ok {
		return s.events
	}
	return 0
}

// EventStore runs the selected scenarios one after another, each on a fresh
// store in a new directory under cfg.Dir, and returns their results. It
// stops at the first error, returning the results so far.
func EventStore(ctx context.Context, open Open, cfg Config) ([]Result, error) {
	selected, err := selectScenarios(cfg.Scenarios)
	if err != nil {
		return nil, err
	}
	if cfg.Events < 0 || cfg.Streams < 0 || cfg.EventSize < 0 {
		return nil, errors.New("events, streams and event size must not be negative")
	}
	var results []Result
	for _, sc := range selected {
		r, err := runOne(ctx, open, cfg, sc)
		if err != nil {
			return results, fmt.Errorf("scenario %s: %w", sc.name, err)
		}
		if cfg.OnResult != nil {
			cfg.OnResult(r)
		}
		results = append(results, r)
	}
	return results, nil
}

func selectScenarios(names []string) ([]scenario, error) {
	if len(names) == 0 {
		var out []scenario
		for _, s := range scenarios {
			if !s.long {
				out = append(out, s)
			}
		}
		return out, nil
	}
	out := make([]scenario, 0, len(names))
	for _, n := range names {
		s, ok := lookup(n)
		if !ok {
			return nil, &UnknownScenarioError{Name: n}
		}
		out = append(out, s)
	}
	return out, nil
}

func lookup(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}

func runOne(ctx context.Context, open Open, cfg Config, sc scenario) (r Result, err error) {
	dir, err := os.MkdirTemp(cfg.Dir, "fjord-bench-"+sc.name+"-")
	if err != nil {
		return Result{}, err
	}
	if cfg.Keep {
		defer func() { r.Dir = dir }()
	} else {
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	}
	d := &storeDir{open: open, path: dir}
	s, err := d.openStore()
	if err != nil {
		return Result{}, fmt.Errorf("opening the store: %w", err)
	}
	defer func() { err = errors.Join(err, d.closeStore()) }()
	p := params{events: sc.events, streams: cmp.Or(sc.streams, 100_000), payload: payload(256), dir: d}
	if cfg.Events > 0 {
		p.events = cfg.Events
	}
	if cfg.Streams > 0 {
		p.streams = cfg.Streams
	}
	if cfg.EventSize > 0 {
		p.payload = payload(cfg.EventSize)
	}
	r, err = sc.run(ctx, s, p)
	if err == nil {
		err = ctx.Err() // an interrupted scenario has no meaningful result
	}
	r.Scenario, r.Op = sc.name, sc.op
	return r, err
}

// storeDir is a scenario's data directory and the store open in it, if
// any. A scenario that closes and reopens its store does so through here,
// so that runOne closes whichever store is open at the end.
type storeDir struct {
	open  Open
	path  string
	store *eventstore.Store // nil while closed
}

// openStore opens the store in the directory. The previous one must be
// closed.
func (d *storeDir) openStore() (*eventstore.Store, error) {
	s, err := d.open(d.path)
	if err != nil {
		return nil, err
	}
	d.store = s
	return s, nil
}

// closeStore closes the open store, if any.
func (d *storeDir) closeStore() error {
	s := d.store
	if s == nil {
		return nil
	}
	d.store = nil
	return s.Close()
}

// payload returns n bytes of valid JSON.
func payload(n int) []byte {
	const head, tail = `{"pad":"`, `"}`
	if n < len(head)+len(tail) {
		return []byte(strings.Repeat(" ", n-1) + "0")
	}
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}
