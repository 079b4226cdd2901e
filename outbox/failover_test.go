package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/internal/sqldialect"
	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/outbox"
)

// TestLateCommitNotSkipped: transaction A enqueues first (a lower
// sequence) but commits after B, whose message the relay has already
// published. A relay that remembered "published up to B's sequence" would
// skip A for good; this one must publish it. Only PostgreSQL runs
// writers concurrently: SQLite's single writer commits in sequence order.
func TestLateCommitNotSkipped(t *testing.T) {
	db := sqltest.Postgres(t)
	ob := openOutbox(t, db)
	p := newFakePublisher()
	idle := make(chan struct{}, 1)
	opts := relayOptions(db, outbox.Hooks{OnIdle: func() {
		select {
		case idle <- struct{}{}:
		default:
		}
	}})
	opts.PollInterval = 10 * time.Millisecond // so that idle passes keep coming
	runRelay(t, outbox.NewRelay(ob, p.as("r"), opts))
	ctx := context.Background()
	for round := range 3 {
		a, b := fmt.Sprint("a", round), fmt.Sprint("b", round)
		txA, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ob.Enqueue(ctx, txA, msg(a, "key-a")); err != nil {
			t.Fatal(err)
		}
		enqueue(t, db, ob, msg(b, "key-b"))
		waitFor(t, p, b, func() bool { return slices.Contains(p.ids(), b) })
		if slices.Contains(p.ids(), a) {
			t.Fatalf("%s published before its transaction committed", a)
		}
		if err := txA.Commit(); err != nil {
			t.Fatal(err)
		}
		// Two idle passes signalled after the commit (after dropping the
		// one buffered before it): the second one's read started after it.
		select {
		case <-idle:
		default:
		}
		for range 2 {
			select {
			case <-idle:
			case <-time.After(30 * time.Second):
				t.Fatal("the relay made no idle pass")
			}
		}
		if !slices.Contains(p.ids(), a) {
			t.Fatalf("%s, committed after %s with a lower sequence, was skipped; published: %v", a, b, p.ids())
		}
	}
	if diff := cmp.Diff([]string{"b0", "a0", "b1", "a1", "b2", "a2"}, p.ids()); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
}

// TestFailover runs two relays: one leads and publishes alone; when it is
// closed the other takes over; when the new leader's session dies
// (PostgreSQL: its backend is terminated; SQLite: its lease expires) a
// third relay takes over. Nothing is lost, and per-key order holds.
func TestFailover(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		ob := openOutbox(t, db)
		p := newFakePublisher()
		leaders := make(chan string, 16)
		relays := map[string]*outbox.Relay{}
		stops := map[string]func(){}
		start := func(name string) {
			opts := relayOptions(db, outbox.Hooks{OnLeader: func(leader bool) {
				if leader {
					leaders <- name
				}
			}})
			opts.LeaseTTL = 200 * time.Millisecond
			relays[name] = outbox.NewRelay(ob, p.as(name), opts)
			stops[name] = runRelay(t, relays[name])
		}
		n := 0
		publishBatch := func(want string) {
			t.Helper()
			before := len(p.all())
			var batch []string
			for i := range 12 {
				batch = append(batch, fmt.Sprintf("%03d", n))
				enqueue(t, db, ob, msg(batch[i], fmt.Sprint("key-", i%3)))
				n++
			}
			waitFor(t, p, "the batch", func() bool {
				ids := p.ids()
				for _, id := range batch {
					if !slices.Contains(ids, id) {
						return false
					}
				}
				return true
			})
			for _, pb := range p.all()[before:] {
				if pb.relay != want {
					t.Errorf("message %s published by %s, want the leader %s", pb.msg.ID, pb.relay, want)
				}
			}
		}
		start("one")
		start("two")
		first := <-leaders
		publishBatch(first)
		stops[first]()
		second := <-leaders
		if second == first {
			t.Fatalf("%s led again after it was closed", first)
		}
		publishBatch(second)

		start("three")
		killSession(t, db, relays[second])
		third := <-leaders
		if third != "three" {
			t.Fatalf("after %s's session died, %s leads, want three", second, third)
		}
		publishBatch(third)

		var ids []string
		seen := map[string]bool{}
		for _, pb := range p.all() {
			if !seen[pb.msg.ID] {
				seen[pb.msg.ID] = true
				ids = append(ids, pb.msg.ID)
			}
		}
		want := make([]string, n)
		for i := range want {
			want[i] = fmt.Sprintf("%03d", i)
		}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("first deliveries (-want +got):\n%s", diff)
		}
	})
}

// killSession ends the leadership of relay r as a crash would: on
// PostgreSQL it terminates the backend holding the leader lock; on SQLite
// it makes the lease expire.
func killSession(t *testing.T, db *sql.DB, r *outbox.Relay) {
	t.Helper()
	if sqldialect.Of(db) == sqldialect.SQLite {
		if _, err := db.Exec("UPDATE fjord_outbox_leader SET expires = 0"); err != nil {
			t.Fatal(err)
		}
		return
	}
	key := uint64(outbox.LeaderLockKey(r))
	var pid int
	err := db.QueryRow(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid = $1 AND objid = $2 AND objsubid = 1`, int64(key>>32), int64(key&0xffffffff)).Scan(&pid)
	if err != nil {
		t.Fatalf("finding the leader's session: %v", err)
	}
	if _, err := db.Exec("SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
}

// TestSchemasLeadApart: outboxes of one name in two schemas of one
// database (two services sharing a server) each get a leader.
func TestSchemasLeadApart(t *testing.T) {
	p := newFakePublisher()
	for _, name := range []string{"a", "b"} {
		db := sqltest.Postgres(t)
		ob := openOutbox(t, db)
		runRelay(t, outbox.NewRelay(ob, p.as(name), relayOptions(db, outbox.Hooks{})))
		enqueue(t, db, ob, msg(name, "k"))
	}
	waitFor(t, p, "both schemas' messages", func() bool { return len(p.all()) == 2 })
}
