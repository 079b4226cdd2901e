package projection_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/projection"
)

func TestMain(m *testing.M) {
	if os.Getenv(envCrashChild) != "" {
		crashChild()
		return
	}
	goleak.VerifyTestMain(m)
}

// balances is the read model under test: per account stream, the sum of
// the amounts and the number of events.
type balance struct{ Total, Events int64 }

func balances() projection.Definition {
	return projection.Definition{
		Name:   "balances",
		Filter: eventstore.Filter{Category: "account"},
		Tables: []string{"balances"},
		Setup: func(ctx context.Context, tx *projection.Tx) error {
			for _, q := range []string{
				"CREATE TABLE " + tx.Table("balances") + " (id TEXT PRIMARY KEY, total BIGINT NOT NULL, events BIGINT NOT NULL)",
				"CREATE INDEX " + tx.Index("balances_by_total") + " ON " + tx.Table("balances") + " (total)",
			} {
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
			return nil
		},
		Handle: func(ctx context.Context, tx *projection.Tx, e eventstore.RecordedEvent) error {
			var d struct{ Amount int64 }
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return err
			}
			t := tx.Table("balances")
			_, err := tx.Exec(ctx, "INSERT INTO "+t+" (id, total, events) VALUES (?, ?, 1) ON CONFLICT (id) DO UPDATE SET total = "+t+".total + excluded.total, events = "+t+".events + 1",
				string(e.Stream), d.Amount)
			return err
		},
	}
}

func deposit(amount int) eventstore.Event {
	return eventstore.Event{Type: "Deposited", Data: fmt.Appendf(nil, `{"amount":%d}`, amount)}
}

// appendN appends n deposits over streams account-0…, with an unrelated
// event every so often; it returns the model computed from the events.
func appendN(t testing.TB, s *eventstore.Store, n, streams, offset int) eventstore.Position {
	t.Helper()
	var last eventstore.Position
	for i := range n {
		stream := eventstore.StreamID(fmt.Sprintf("account-%d", (offset+i)%streams))
		if i%10 == 9 {
			stream = "audit-1"
		}
		res, err := s.Append(context.Background(), stream, eventstore.Any, deposit(offset+i))
		if err != nil {
			t.Fatal(err)
		}
		last = res.Position
	}
	return last
}

// wantModel folds the events of the store directly.
func wantModel(t testing.TB, s *eventstore.Store) map[string]balance {
	t.Helper()
	want := map[string]balance{}
	for e, err := range s.ReadAll(context.Background(), eventstore.ReadAllOptions{Filter: eventstore.Filter{Category: "account"}}) {
		if err != nil {
			t.Fatal(err)
		}
		var d struct{ Amount int64 }
		json.Unmarshal(e.Data, &d)
		b := want[string(e.Stream)]
		want[string(e.Stream)] = balance{b.Total + d.Amount, b.Events + 1}
	}
	return want
}

func readModel(t testing.TB, db *sql.DB) map[string]balance {
	t.Helper()
	rows, err := db.Query("SELECT id, total, events FROM balances")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]balance{}
	for rows.Next() {
		var id string
		var b balance
		if err := rows.Scan(&id, &b.Total, &b.Events); err != nil {
			t.Fatal(err)
		}
		got[id] = b
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func newStore(t testing.TB) *eventstore.Store {
	s := eventstore.New(memstore.New(), nil)
	t.Cleanup(func() { s.Close() })
	return s
}

// start runs p in the background until the test ends and returns Run's error channel.
func start(t *testing.T, p *projection.Projector) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	failed := make(chan error, 1)
	go func() {
		err := p.Run(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
			failed <- err
		}
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return failed
}

// waitFor waits for p to reach pos, or for Run to fail.
func waitFor(t *testing.T, p *projection.Projector, failed <-chan error, pos eventstore.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		select {
		case <-failed:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := p.WaitFor(ctx, pos); err != nil {
		t.Fatal(err)
	}
}

func TestProjectsEachEventOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts projection.Options
	}{
		{"one event per transaction", projection.Options{MaxBatch: 1}},
		{"batches of 7", projection.Options{MaxBatch: 7}},
		{"default batches", projection.Options{}},
		{"batches with a delay", projection.Options{MaxBatch: 50, MaxDelay: time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sqltest.Each(t, func(t *testing.T, db *sql.DB) {
				s := newStore(t)
				appendN(t, s, 300, 13, 0)
				p := projection.New(s, db, balances(), &tc.opts)
				failed := start(t, p)
				last := appendN(t, s, 200, 13, 300) // while it runs
				waitFor(t, p, failed, last)
				ctx := context.Background()
				if diff := cmp.Diff(wantModel(t, s), readModel(t, db)); diff != "" {
					t.Errorf("read model (-want +got):\n%s", diff)
				}
				st, err := p.Status(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if st.Position != last || st.LagEvents != 0 || !st.Running {
					t.Errorf("status %+v: want running at %d with no lag", st, last)
				}
			})
		})
	}
}

func TestRestartResumesFromCheckpoint(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		s := newStore(t)
		ctx := context.Background()
		for round := range 3 {
			last := appendN(t, s, 100, 5, round*100)
			p := projection.New(s, db, balances(), nil)
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- p.Run(runCtx) }()
			if err := p.WaitFor(ctx, last); err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v", err)
			}
		}
		if diff := cmp.Diff(wantModel(t, s), readModel(t, db)); diff != "" {
			t.Errorf("read model after restarts (-want +got):\n%s", diff)
		}
	})
}

func TestErrorPolicy(t *testing.T) {
	for _, tc := range []struct {
		name       string
		policy     projection.ErrorPolicy
		failures   int // how many times the poison event fails
		wantStop   bool
		wantParked []int64
	}{
		{name: "stop", policy: projection.ErrorPolicy{}, failures: 100, wantStop: true},
		{name: "park", policy: projection.ErrorPolicy{Then: projection.Park}, failures: 100, wantParked: []int64{3}},
		{name: "retry then succeed", policy: projection.ErrorPolicy{Retries: 3, Backoff: time.Microsecond}, failures: 2},
		{name: "retry then park", policy: projection.ErrorPolicy{Retries: 2, Backoff: time.Microsecond, Then: projection.Park}, failures: 100, wantParked: []int64{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sqltest.Each(t, func(t *testing.T, db *sql.DB) {
				s := newStore(t)
				def := balances()
				handle, failures := def.Handle, 0
				def.Handle = func(ctx context.Context, tx *projection.Tx, e eventstore.RecordedEvent) error {
					if e.Type == "Poison" && failures < tc.failures {
						failures++
						return errors.New("poisoned")
					}
					if e.Type == "Poison" {
						return nil
					}
					return handle(ctx, tx, e)
				}
				for i, typ := range []string{"Deposited", "Deposited", "Poison", "Deposited", "Deposited"} {
					e := deposit(1)
					e.Type = typ
					if _, err := s.Append(context.Background(), "account-1", eventstore.Exact(eventstore.Version(i)), e); err != nil {
						t.Fatal(err)
					}
				}
				p := projection.New(s, db, def, &projection.Options{OnError: tc.policy})
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				done := make(chan error, 1)
				go func() { done <- p.Run(ctx) }()
				if tc.wantStop {
					var herr *projection.HandlerError
					if err := <-done; !errors.As(err, &herr) || herr.Event.Position != 3 {
						t.Fatalf("Run: %v, want a HandlerError at position 3", err)
					}
				} else {
					if err := p.WaitFor(ctx, 5); err != nil {
						t.Fatal(err)
					}
					cancel()
					<-done
				}
				var events int64
				db.QueryRow("SELECT events FROM balances WHERE id = 'account-1'").Scan(&events)
				var parked []int64
				rows, err := db.Query("SELECT position FROM fjord_projection_parked ORDER BY position")
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var pos int64
					rows.Scan(&pos)
					parked = append(parked, pos)
				}
				rows.Close()
				if diff := cmp.Diff(tc.wantParked, parked); diff != "" {
					t.Errorf("parked positions (-want +got):\n%s", diff)
				}
				wantDeposits := map[bool]int64{true: 2, false: 4}[tc.wantStop]
				if events != wantDeposits {
					t.Errorf("%d deposits applied, want %d", events, wantDeposits)
				}
			})
		})
	}
}

func TestRebuildWhileEventsArrive(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		s := newStore(t)
		appendN(t, s, 2000, 50, 0)
		// While a rebuild replays into the shadow tables, its handler
		// appends new events: they arrive during the rebuild, every time.
		def := balances()
		handle := def.Handle
		var offset, budget atomic.Int64
		offset.Store(2000)
		def.Handle = func(ctx context.Context, tx *projection.Tx, e eventstore.RecordedEvent) error {
			if strings.HasSuffix(tx.Table("balances"), "__shadow") && budget.Add(-5) >= 0 {
				appendN(t, s, 5, 50, int(offset.Add(5)-5))
			}
			return handle(ctx, tx, e)
		}
		p := projection.New(s, db, def, &projection.Options{MaxBatch: 100})
		failed := start(t, p)
		for range 2 {
			budget.Store(300)
			before, _ := s.Head(context.Background())
			info, err := p.Rebuild(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			after, _ := s.Head(context.Background())
			if after-before != 300 {
				t.Fatalf("%d events arrived during the rebuild, want 300", after-before)
			}
			t.Logf("rebuild: %+v, %d events appended meanwhile", info, after-before)
			// The live model keeps serving during and after the swap.
			if len(readModel(t, db)) == 0 {
				t.Fatal("the read model is empty after a rebuild")
			}
		}
		last, _ := s.Head(context.Background())
		waitFor(t, p, failed, last)
		if diff := cmp.Diff(wantModel(t, s), readModel(t, db)); diff != "" {
			t.Errorf("read model after rebuilds (-want +got):\n%s", diff)
		}
	})
}

func TestWaitForTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := projection.New(newStore(t), sqltest.SQLite(t), balances(), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.WaitFor(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitFor without a running projection: %v, want DeadlineExceeded", err)
		}
	})
}

func TestManyProjectionsInOneProcess(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		s := newStore(t)
		last := appendN(t, s, 500, 7, 0)
		var ps []*projection.Projector
		for i := range 3 {
			def := balances()
			def.Name = fmt.Sprintf("balances-%d", i)
			table := fmt.Sprintf("balances%d", i)
			def.Tables = []string{table}
			def.Setup = func(ctx context.Context, tx *projection.Tx) error {
				_, err := tx.Exec(ctx, "CREATE TABLE "+tx.Table(table)+" (id TEXT PRIMARY KEY, n BIGINT NOT NULL)")
				return err
			}
			def.Handle = func(ctx context.Context, tx *projection.Tx, e eventstore.RecordedEvent) error {
				t := tx.Table(table)
				_, err := tx.Exec(ctx, "INSERT INTO "+t+" (id, n) VALUES (?, 1) ON CONFLICT (id) DO UPDATE SET n = "+t+".n + 1", string(e.Stream))
				return err
			}
			ps = append(ps, projection.New(s, db, def, &projection.Options{MaxBatch: 10 * (i + 1)}))
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- projection.RunAll(ctx, ps...) }()
		for _, p := range ps {
			wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
			err := p.WaitFor(wctx, last)
			wcancel()
			if err != nil {
				cancel()
				t.Fatalf("%v (RunAll: %v)", err, <-done)
			}
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("RunAll: %v", err)
		}
		for i := range 3 {
			var n int64
			if err := db.QueryRow(fmt.Sprintf("SELECT sum(n) FROM balances%d", i)).Scan(&n); err != nil || n != 450 {
				t.Errorf("projection %d applied %d events (%v), want 450", i, n, err)
			}
		}
	})
}
