package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver" // "sqlite3"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/projection"
	"github.com/fjord-data/fjord/replica"
)

// ProjectionScenarios are the scenarios of `fjord bench projection`.
func ProjectionScenarios() []string { return []string{"project", "rebuild", "replica-bootstrap"} }

// Projection runs one projection scenario on a fresh store (from open) and
// a fresh SQLite database in a temporary directory under dir, over events
// events (rows for replica-bootstrap) spread over streams streams.
//
//   - project: append the events, then project them into SQLite from the
//     start in batches of batch events; the clock covers the projection.
//   - rebuild: project them, then rebuild; the clock covers the rebuild.
//   - replica-bootstrap: bootstrap a replica from a snapshot of events
//     rows; the clock covers the bootstrap.
func Projection(ctx context.Context, open Open, dir, scenario string, events, streams, batch int) (r Result, err error) {
	tmp, err := os.MkdirTemp(dir, "fjord-bench-"+scenario+"-")
	if err != nil {
		return Result{}, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(tmp, "read.db")+"?_txlock=immediate&_pragma=busy_timeout(20000)&_pragma=synchronous(normal)")
	if err != nil {
		return Result{}, err
	}
	defer db.Close()
	// WAL mode once, before connections open concurrently (switching it
	// needs the file to itself).
	if _, err := db.ExecContext(ctx, "PRAGMA journal_mode=wal"); err != nil {
		return Result{}, err
	}
	r = Result{Scenario: scenario, Events: events, Ops: 1}
	var start time.Time
	switch scenario {
	case "replica-bootstrap":
		rows := func(yield func(replica.Row, error) bool) {
			data := payload(200)
			for i := range events {
				if !yield(replica.Row{Key: fmt.Sprintf("entity-%d", i), Version: 1, Data: data}, nil) {
					return
				}
			}
		}
		start = time.Now()
		err = replica.New(db, "entities", nil, nil).Bootstrap(ctx, replica.Snapshot{Position: eventstore.Position(events), Rows: rows})
		r.Op = "bootstrap"
	case "project", "rebuild":
		store, oerr := open(filepath.Join(tmp, "events"))
		if oerr != nil {
			return Result{}, oerr
		}
		defer func() { err = errors.Join(err, store.Close()) }()
		if err := fill(ctx, store, events, streams); err != nil {
			return Result{}, err
		}
		p := projection.New(store, db, counts(), &projection.Options{MaxBatch: batch})
		start = time.Now()
		err = projectToHead(ctx, store, p)
		r.Op = "projection to head"
		if scenario == "rebuild" && err == nil {
			start = time.Now()
			_, err = p.Rebuild(ctx)
			r.Op = "rebuild"
		}
	default:
		return Result{}, &UnknownScenarioError{Name: scenario}
	}
	if err != nil {
		return Result{}, err
	}
	r.Seconds = time.Since(start).Seconds()
	r.EventsPerSec = float64(events) / r.Seconds
	r.P50ms, r.P99ms, r.P999ms, r.MaxMs = r.Seconds*1000, r.Seconds*1000, r.Seconds*1000, r.Seconds*1000
	return r, nil
}

func fill(ctx context.Context, store *eventstore.Store, events, streams int) error {
	data := payload(100)
	for i := 0; i < events; i += 100 {
		n := min(100, events-i)
		evs := make([]eventstore.Event, n)
		for j := range evs {
			evs[j] = eventstore.Event{Type: "Counted", Data: data}
		}
		stream := eventstore.StreamID(fmt.Sprintf("counter-%d", (i/100)%streams))
		if _, err := store.Append(ctx, stream, eventstore.Any, evs...); err != nil {
			return err
		}
	}
	return nil
}

func projectToHead(ctx context.Context, store *eventstore.Store, p *projection.Projector) error {
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	go func() {
		select {
		case err := <-done:
			done <- err
			cancel()
		case <-runCtx.Done():
		}
	}()
	err = p.WaitFor(runCtx, head)
	cancel()
	return errors.Join(err, ignoreCanceled(<-done))
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// counts is the benchmark's read model: events and bytes per stream.
func counts() projection.Definition {
	return projection.Definition{
		Name:   "counts",
		Tables: []string{"counts"},
		Setup: func(ctx context.Context, tx *projection.Tx) error {
			_, err := tx.Exec(ctx, "CREATE TABLE "+tx.Table("counts")+" (id TEXT PRIMARY KEY, events BIGINT NOT NULL, bytes BIGINT NOT NULL)")
			return err
		},
		Handle: func(ctx context.Context, tx *projection.Tx, e eventstore.RecordedEvent) error {
			t := tx.Table("counts")
			_, err := tx.Exec(ctx, "INSERT INTO "+t+" (id, events, bytes) VALUES (?, 1, ?) ON CONFLICT (id) DO UPDATE SET events = "+t+".events + 1, bytes = "+t+".bytes + excluded.bytes",
				string(e.Stream), len(e.Data))
			return err
		},
	}
}
