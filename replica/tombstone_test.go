package replica_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/projection"
	"github.com/fjord-data/fjord/replica"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// state is the replica's live rows: key → version.
func state(t *testing.T, r *replica.Replica) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	for row, err := range r.All(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		got[row.Key] = row.Version
	}
	return got
}

func TestTombstoneRetention(t *testing.T) {
	const retention = time.Hour
	for _, tc := range []struct {
		name       string
		retention  time.Duration
		after      time.Duration // from the deletion to the purge
		wantPurged int64
		want       map[string]uint64 // after a late a@2 arrives
	}{
		{"within the retention the late change is rejected", retention, retention - time.Millisecond, 0, map[string]uint64{"b": 1}},
		{"after the retention the deletion is forgotten", retention, retention + time.Millisecond, 1, map[string]uint64{"a": 2, "b": 1}},
		{"no retention keeps tombstones for ever", 0, 1000 * retention, 0, map[string]uint64{"b": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sqltest.Each(t, func(t *testing.T, db *sql.DB) {
				ctx := context.Background()
				clk := &clock{now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
				r := replica.New(db, "things", nil, &replica.Options{TombstoneRetention: tc.retention, Now: clk.Now})
				if _, err := r.Init(ctx); err != nil {
					t.Fatal(err)
				}
				if err := r.Apply(ctx, up("a", 1, "a1"), del("a", 3), up("b", 1, "b1")); err != nil {
					t.Fatal(err)
				}
				clk.Advance(tc.after)
				n, err := r.PurgeTombstones(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n != tc.wantPurged {
					t.Errorf("PurgeTombstones = %d, want %d", n, tc.wantPurged)
				}
				if err := r.Apply(ctx, up("a", 2, "a2")); err != nil { // late, older than the deletion
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, state(t, r)); diff != "" {
					t.Errorf("live rows (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// A tombstone's age counts from its latest deletion, and Bootstrap dates
// the snapshot's tombstones when it writes them.
func TestTombstoneDatedByLatestWrite(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		clk := &clock{now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
		r := replica.New(db, "things", nil, &replica.Options{TombstoneRetention: time.Hour, Now: clk.Now})
		snap := replica.Snapshot{Rows: func(yield func(replica.Row, error) bool) {
			_ = yield(replica.Row{Key: "s", Version: 4, Deleted: true}, nil) &&
				yield(replica.Row{Key: "a", Version: 1, Data: []byte("a1")}, nil)
		}}
		if err := r.Bootstrap(ctx, snap); err != nil {
			t.Fatal(err)
		}
		clk.Advance(50 * time.Minute)
		if err := r.Apply(ctx, del("a", 2)); err != nil {
			t.Fatal(err)
		}
		clk.Advance(20 * time.Minute) // s deleted 70 minutes ago, a 20
		if n, err := r.PurgeTombstones(ctx); n != 1 || err != nil {
			t.Fatalf("PurgeTombstones = %d, %v; want 1 (s)", n, err)
		}
		var keys []string
		rows, err := db.Query("SELECT key FROM things ORDER BY key")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		if diff := cmp.Diff([]string{"a"}, keys); diff != "" {
			t.Errorf("rows left (-want +got):\n%s", diff)
		}
	})
}

// A table created before deleted_at existed gets the column, and its
// tombstones are dated at the migration.
func TestTombstoneMigration(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		blob := projection.DialectOf(db).Blob()
		for _, q := range []string{
			"CREATE TABLE things (key TEXT PRIMARY KEY, version BIGINT NOT NULL, deleted INTEGER NOT NULL, data " + blob + ", position BIGINT NOT NULL)",
			"INSERT INTO things VALUES ('a', 2, 1, NULL, 2), ('b', 1, 0, 'b1', 1)",
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		clk := &clock{now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
		r := replica.New(db, "things", nil, &replica.Options{TombstoneRetention: time.Hour, Now: clk.Now})
		if _, err := r.Init(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := r.PurgeTombstones(ctx); n != 0 || err != nil {
			t.Fatalf("PurgeTombstones at the migration = %d, %v; want 0", n, err)
		}
		clk.Advance(time.Hour + time.Millisecond)
		if n, err := r.PurgeTombstones(ctx); n != 1 || err != nil {
			t.Fatalf("PurgeTombstones after the retention = %d, %v; want 1", n, err)
		}
		if diff := cmp.Diff(map[string]uint64{"b": 1}, state(t, r)); diff != "" {
			t.Errorf("live rows (-want +got):\n%s", diff)
		}
	})
}
