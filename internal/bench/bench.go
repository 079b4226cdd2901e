package bench

import (
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
	// Scenarios to run, in this order; empty runs all (see Scenarios).
	Scenarios []string
	// Events per scenario; 0 takes each scenario's default.
	Events int
	// Streams is how many streams the events spread over (default
	// 100,000). read-stream ignores it: its streams have 100 events each.
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

// Scenarios returns the names of the event store scenarios, in the order
// EventStore runs them by default.
func Scenarios() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
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
		return scenarios, nil
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
	s, err := open(dir)
	if err != nil {
		return Result{}, fmt.Errorf("opening the store: %w", err)
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	p := params{events: sc.events, streams: 100_000, payload: payload(256)}
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

// payload returns n bytes of valid JSON.
func payload(n int) []byte {
	const head, tail = `{"pad":"`, `"}`
	if n < len(head)+len(tail) {
		return []byte(strings.Repeat(" ", n-1) + "0")
	}
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}
