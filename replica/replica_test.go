package replica_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/projection"
	"github.com/fjord-data/fjord/replica"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newStore(t testing.TB) *eventstore.Store {
	s := eventstore.New(memstore.New(), nil)
	t.Cleanup(func() { s.Close() })
	return s
}

func up(key string, v uint64, data string) replica.Change {
	return replica.Change{Key: key, Version: v, Data: []byte(data), Position: eventstore.Position(v)}
}

func del(key string, v uint64) replica.Change {
	return replica.Change{Key: key, Version: v, Deleted: true, Position: eventstore.Position(v)}
}

func TestVersionGatedApply(t *testing.T) {
	for _, tc := range []struct {
		name    string
		batches [][]replica.Change
		want    map[string]string // live rows: key → data
	}{
		{"in order", [][]replica.Change{{up("a", 1, "a1"), up("a", 2, "a2"), up("b", 1, "b1")}}, map[string]string{"a": "a2", "b": "b1"}},
		{"redelivered", [][]replica.Change{{up("a", 1, "a1"), up("a", 2, "a2")}, {up("a", 1, "a1"), up("a", 2, "a2")}}, map[string]string{"a": "a2"}},
		{"reordered", [][]replica.Change{{up("a", 2, "a2")}, {up("a", 1, "a1")}}, map[string]string{"a": "a2"}},
		{"deleted", [][]replica.Change{{up("a", 1, "a1"), del("a", 2), up("b", 1, "b1")}}, map[string]string{"b": "b1"}},
		{"late change after delete", [][]replica.Change{{del("a", 3)}, {up("a", 2, "a2")}}, map[string]string{}},
		{"recreated after delete", [][]replica.Change{{del("a", 3)}, {up("a", 4, "a4")}}, map[string]string{"a": "a4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sqltest.Each(t, func(t *testing.T, db *sql.DB) {
				ctx := context.Background()
				r := replica.New(db, "things", nil, nil)
				if _, err := r.Init(ctx); err != nil {
					t.Fatal(err)
				}
				for _, b := range tc.batches {
					if err := r.Apply(ctx, b...); err != nil {
						t.Fatal(err)
					}
				}
				got := map[string]string{}
				for _, k := range []string{"a", "b"} {
					row, ok, err := r.Get(ctx, k)
					if err != nil {
						t.Fatal(err)
					}
					if ok {
						got[k] = string(row.Data)
					}
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("replica (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// owner appends n changes to customers, deleting now and then.
func owner(t testing.TB, s *eventstore.Store, n, offset int) eventstore.Position {
	var last eventstore.Position
	for i := offset; i < offset+n; i++ {
		e := eventstore.Event{Type: "CustomerChanged", Data: fmt.Appendf(nil, `{"name":"c%d"}`, i)}
		if i%17 == 16 {
			e = eventstore.Event{Type: "CustomerDeleted"}
		}
		res, err := s.Append(context.Background(), eventstore.StreamID(fmt.Sprintf("customer-%d", i%97)), eventstore.Any, e)
		if err != nil {
			t.Fatal(err)
		}
		last = res.Position
	}
	return last
}

var deletes = []string{"CustomerDeleted"}

func TestBootstrapWhileOwnerAppends(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s := newStore(t)
		owner(t, s, 1000, 0)
		var wg sync.WaitGroup
		var last eventstore.Position
		wg.Go(func() { last = owner(t, s, 2000, 1000) })
		snap, err := replica.CategorySnapshot(ctx, s, "customer", deletes)
		if err != nil {
			t.Fatal(err)
		}
		r := replica.New(db, "customers", &replica.CategorySource{Store: s, Category: "customer", DeleteTypes: deletes}, nil)
		if err := r.Bootstrap(ctx, snap); err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(runCtx) }()
		wg.Wait()
		if err := r.WaitFor(ctx, last); err != nil {
			t.Fatal(err)
		}
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
		now, err := replica.CategorySnapshot(ctx, s, "customer", deletes)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Reconcile(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Drift || rep.OwnerRows == 0 {
			t.Errorf("after bootstrap at %d and catch-up to %d: %+v", snap.Position, last, rep)
		}
	})
}

func TestReconcileReportsDrift(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tamper  string // with the key of a row whose deleted column is deleted
		deleted int
		want    func(r replica.Report, key string) replica.Report
	}{
		{"no drift", "", 0, func(r replica.Report, _ string) replica.Report { return r }},
		{"changed row", "UPDATE customers SET data = 'x' WHERE key = ?", 0, func(r replica.Report, key string) replica.Report {
			r.Drift, r.Different = true, []string{key}
			return r
		}},
		{"lost row", "DELETE FROM customers WHERE key = ?", 0, func(r replica.Report, key string) replica.Report {
			r.Drift, r.Missing, r.ReplicaRows = true, []string{key}, r.ReplicaRows-1
			return r
		}},
		{"resurrected row", "UPDATE customers SET deleted = 0, data = 'z' WHERE key = ?", 1, func(r replica.Report, key string) replica.Report {
			r.Drift, r.Extra, r.ReplicaRows = true, []string{key}, r.ReplicaRows+1
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sqltest.Each(t, func(t *testing.T, db *sql.DB) {
				ctx := context.Background()
				s := newStore(t)
				owner(t, s, 500, 0)
				snap, err := replica.CategorySnapshot(ctx, s, "customer", deletes)
				if err != nil {
					t.Fatal(err)
				}
				r := replica.New(db, "customers", nil, nil)
				if err := r.Bootstrap(ctx, snap); err != nil {
					t.Fatal(err)
				}
				clean, err := r.Reconcile(ctx, snap)
				if err != nil {
					t.Fatal(err)
				}
				var key string
				if tc.tamper != "" {
					q := "SELECT min(key) FROM customers WHERE deleted = " + fmt.Sprint(tc.deleted)
					if err := db.QueryRow(q).Scan(&key); err != nil {
						t.Fatal(err)
					}
					if _, err := db.Exec(projection.DialectOf(db).Rebind(tc.tamper), key); err != nil {
						t.Fatal(err)
					}
				}
				got, err := r.Reconcile(ctx, snap)
				if err != nil {
					t.Fatal(err)
				}
				want := tc.want(clean, key)
				if diff := cmp.Diff(want, got, cmpIgnoreReplicaChecksum(tc.tamper != "")); diff != "" {
					t.Errorf("report (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func cmpIgnoreReplicaChecksum(ignore bool) cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool { return ignore && p.Last().String() == ".ReplicaChecksum" }, cmp.Ignore())
}
