package inbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/inbox"
	"github.com/fjord-data/fjord/internal/sqldialect"
	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/mempubsub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup opens an inbox and the consumer's own table: a count per account,
// which each message's handler increments.
func setup(t *testing.T, db *sql.DB, opts *inbox.Options) (*inbox.Inbox, func(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error) {
	t.Helper()
	in, err := inbox.Open(context.Background(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	if _, err := db.Exec("CREATE TABLE balances (account TEXT PRIMARY KEY, total BIGINT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	q := sqldialect.Of(db).Rebind("INSERT INTO balances (account, total) VALUES (?, 1) ON CONFLICT (account) DO UPDATE SET total = balances.total + 1")
	deposit := func(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error {
		_, err := tx.ExecContext(ctx, q, m.Subject)
		return err
	}
	return in, deposit
}

func balances(t *testing.T, db *sql.DB) map[string]int64 {
	t.Helper()
	rows, err := db.Query("SELECT account, total FROM balances")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int64{}
	for rows.Next() {
		var a string
		var n int64
		if err := rows.Scan(&a, &n); err != nil {
			t.Fatal(err)
		}
		got[a] = n
	}
	return got
}

func msg(source, id, account string) *pubsub.Message {
	return &pubsub.Message{ID: id, Source: source, Type: "deposit", Subject: account}
}

func TestDuplicateHasOneEffect(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		var dups []string
		in, deposit := setup(t, db, &inbox.Options{Hooks: inbox.Hooks{OnDuplicate: func(c string, m *pubsub.Message) {
			dups = append(dups, c+" "+m.Source+" "+m.ID)
		}}})
		ctx := context.Background()
		deliveries := []struct {
			consumer string
			m        *pubsub.Message
			want     bool
		}{
			{"ledger", msg("/a", "1", "acct-1"), true},
			{"ledger", msg("/a", "1", "acct-1"), false}, // redelivery
			{"ledger", msg("/b", "1", "acct-1"), true},  // same id, other source
			{"audit", msg("/a", "1", "acct-2"), true},   // same message, other consumer
			{"ledger", msg("/a", "2", "acct-1"), true},
			{"ledger", msg("/a", "2", "acct-1"), false},
		}
		for i, d := range deliveries {
			got, err := in.Handle(ctx, d.consumer, d.m, func(ctx context.Context, tx *sql.Tx) error { return deposit(ctx, tx, d.m) })
			if err != nil || got != d.want {
				t.Errorf("delivery %d: Handle = %v, %v; want %v, nil", i, got, err, d.want)
			}
		}
		if diff := cmp.Diff(map[string]int64{"acct-1": 3, "acct-2": 1}, balances(t, db)); diff != "" {
			t.Errorf("balances (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"ledger /a 1", "ledger /a 2"}, dups); diff != "" {
			t.Errorf("OnDuplicate (-want +got):\n%s", diff)
		}
		seen, err := in.Seen(ctx, "audit", "/a", "1")
		if err != nil || !seen {
			t.Errorf("Seen(audit, /a, 1) = %v, %v; want true", seen, err)
		}
		seen, err = in.Seen(ctx, "audit", "/a", "2")
		if err != nil || seen {
			t.Errorf("Seen(audit, /a, 2) = %v, %v; want false", seen, err)
		}
	})
}

// TestFailureKeepsNothing: when the handler fails, neither its writes nor
// the record stay, so the next delivery handles the message.
func TestFailureKeepsNothing(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		in, deposit := setup(t, db, nil)
		ctx := context.Background()
		m := msg("/a", "1", "acct")
		boom := errors.New("boom")
		_, err := in.Handle(ctx, "c", m, func(ctx context.Context, tx *sql.Tx) error {
			if err := deposit(ctx, tx, m); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Handle: got %v, want boom", err)
		}
		if got := balances(t, db); len(got) != 0 {
			t.Errorf("after a failed handler: balances %v, want none", got)
		}
		applied, err := in.Handle(ctx, "c", m, func(ctx context.Context, tx *sql.Tx) error { return deposit(ctx, tx, m) })
		if err != nil || !applied {
			t.Fatalf("redelivery after a failure: Handle = %v, %v; want true, nil", applied, err)
		}
		if diff := cmp.Diff(map[string]int64{"acct": 1}, balances(t, db)); diff != "" {
			t.Errorf("balances (-want +got):\n%s", diff)
		}
	})
}

// TestConcurrentDuplicates delivers each message to several goroutines at
// once: each takes effect once.
func TestConcurrentDuplicates(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		in, deposit := setup(t, db, nil)
		h := in.Handler("c", deposit)
		const messages, copies = 20, 4
		var wg sync.WaitGroup
		errs := make(chan error, messages*copies)
		for range copies {
			wg.Go(func() {
				for i := range messages {
					m := msg("/a", string(rune('a'+i)), "acct")
					for {
						err := h(context.Background(), m)
						if err == nil {
							break
						}
						if !retryable(err) {
							errs <- err
							break
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if diff := cmp.Diff(map[string]int64{"acct": messages}, balances(t, db)); diff != "" {
			t.Errorf("balances (-want +got):\n%s", diff)
		}
	})
}

// retryable reports errors of concurrent writers that a consumer retries:
// SQLite busy, PostgreSQL serialization failures and deadlocks.
func retryable(err error) bool {
	s := err.Error()
	for _, sub := range []string{"database is locked", "SQLITE_BUSY", "40001", "40P01"} {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestHandleBatch(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		in, deposit := setup(t, db, nil)
		ctx := context.Background()
		if _, err := in.Handle(ctx, "c", msg("/a", "1", "x"), func(ctx context.Context, tx *sql.Tx) error {
			return deposit(ctx, tx, msg("/a", "1", "x"))
		}); err != nil {
			t.Fatal(err)
		}
		var handled []string
		batch := []*pubsub.Message{msg("/a", "1", "x"), msg("/a", "2", "x"), msg("/a", "2", "x"), msg("/a", "3", "y")}
		err := in.HandleBatch(ctx, "c", batch, func(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error {
			handled = append(handled, m.ID)
			return deposit(ctx, tx, m)
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"2", "3"}, handled); diff != "" {
			t.Errorf("handled (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]int64{"x": 2, "y": 1}, balances(t, db)); diff != "" {
			t.Errorf("balances (-want +got):\n%s", diff)
		}
		err = in.HandleBatch(ctx, "c", []*pubsub.Message{{ID: "", Source: "/a"}}, deposit)
		if !errors.Is(err, pubsub.ErrInvalidMessage) {
			t.Errorf("a message without an ID: got %v, want ErrInvalidMessage", err)
		}
	})
}

func TestPurge(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		in, deposit := setup(t, db, nil)
		ctx := context.Background()
		handle := func(id string) bool {
			m := msg("/a", id, "acct")
			ok, err := in.Handle(ctx, "c", m, func(ctx context.Context, tx *sql.Tx) error { return deposit(ctx, tx, m) })
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		handle("old")
		cut := time.Now()
		handle("new")
		n, err := in.Purge(ctx, cut)
		if err != nil || n != 1 {
			t.Fatalf("Purge = %d, %v; want 1", n, err)
		}
		if !handle("old") {
			t.Error("a purged message was not handled again")
		}
		if handle("new") {
			t.Error("a kept record did not stop a duplicate")
		}
	})
}

func TestRunPurge(t *testing.T) {
	db := sqltest.SQLite(t)
	purged := make(chan int64, 1)
	in, deposit := setup(t, db, &inbox.Options{Hooks: inbox.Hooks{OnPurge: func(n int64, err error) {
		if err != nil {
			t.Error(err)
		}
		select {
		case purged <- n:
		default:
		}
	}}})
	ctx, cancel := context.WithCancel(context.Background())
	m := msg("/a", "1", "acct")
	if _, err := in.Handle(ctx, "c", m, func(ctx context.Context, tx *sql.Tx) error { return deposit(ctx, tx, m) }); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- in.RunPurge(ctx, 0, time.Millisecond) }()
	for n := range purged {
		if n == 1 {
			break
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("RunPurge returned %v, want context.Canceled", err)
	}
	if seen, err := in.Seen(context.Background(), "c", "/a", "1"); err != nil || seen {
		t.Errorf("after RunPurge: Seen = %v, %v; want false", seen, err)
	}
}

func TestOpenInvalidTable(t *testing.T) {
	if _, err := inbox.Open(context.Background(), sqltest.SQLite(t), &inbox.Options{Table: "In-Box"}); !errors.Is(err, inbox.ErrInvalidOptions) {
		t.Errorf("got %v, want ErrInvalidOptions", err)
	}
}

// TestRouterRedelivery: a Router whose handlers are wrapped by the inbox
// receives every message twice (published twice, as a relay that failed
// over would); each takes effect once, both as single messages and in
// batches.
func TestRouterRedelivery(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			sqltest.Each(t, func(t *testing.T, db *sql.DB) {
				in, deposit := setup(t, db, nil)
				b := mempubsub.New(&mempubsub.Options{DedupWindow: -1}) // let the copies through
				b.CreateSubscription("orders", "ledger")
				topic := pubsub.NewTopic(b.Topic("orders"), nil)
				defer topic.Close()
				var msgs []*pubsub.Message
				for i := range 10 {
					msgs = append(msgs, msg("/shop", fmt.Sprint(i), fmt.Sprint("acct-", i%3)))
				}
				ctx := context.Background()
				for range 2 {
					if err := topic.Publish(ctx, msgs...); err != nil {
						t.Fatal(err)
					}
				}
				handled := make(chan int, 100)
				r := pubsub.NewRouter(b.Subscription("orders", "ledger"), &pubsub.RouterOptions{Consumer: "ledger", Topic: "orders",
					Hooks: pubsub.RouterHooks{OnHandled: func(i pubsub.HandleInfo) { handled <- len(i.Messages) }}})
				if batch {
					r.HandleBatch("deposit", in.BatchHandler("ledger", deposit), nil)
				} else {
					r.Handle("deposit", in.Handler("ledger", deposit))
				}
				runCtx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- r.Run(runCtx) }()
				for n := 0; n < 2*len(msgs); {
					select {
					case k := <-handled:
						n += k
					case <-time.After(30 * time.Second):
						t.Fatalf("the router handled %d of %d deliveries", n, 2*len(msgs))
					}
				}
				cancel()
				if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("Run: %v", err)
				}
				if diff := cmp.Diff(map[string]int64{"acct-0": 4, "acct-1": 3, "acct-2": 3}, balances(t, db)); diff != "" {
					t.Errorf("balances (-want +got):\n%s", diff)
				}
			})
		})
	}
}
