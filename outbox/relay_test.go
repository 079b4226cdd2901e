package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/internal/sqldialect"
	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/outbox"
	"github.com/fjord-data/fjord/outbox/pgoutbox"
	"github.com/fjord-data/fjord/pubsub"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChaosRole) != "" {
		chaosChild()
		return
	}
	goleak.VerifyTestMain(m)
}

// fakePublisher records what relays publish, and fails while told to.
type fakePublisher struct {
	mu struct {
		sync.Mutex
		got  []published
		fail int // fail this many more calls
	}
	changed chan struct{} // signalled after each call
}

type published struct {
	relay string
	msg   *pubsub.Message
}

var errBrokerDown = errors.New("fake broker is down")

func newFakePublisher() *fakePublisher { return &fakePublisher{changed: make(chan struct{}, 1)} }

// as returns the Publisher that relay name uses.
func (p *fakePublisher) as(name string) outbox.Publisher { return relayPublisher{p, name} }

type relayPublisher struct {
	p    *fakePublisher
	name string
}

func (rp relayPublisher) Publish(ctx context.Context, msgs ...*pubsub.Message) error {
	p := rp.p
	defer p.signal()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.fail > 0 {
		p.mu.fail--
		return errBrokerDown
	}
	for _, m := range msgs {
		p.mu.got = append(p.mu.got, published{rp.name, m})
	}
	return nil
}

func (p *fakePublisher) signal() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (p *fakePublisher) setFail(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.fail = n
}

func (p *fakePublisher) all() []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.mu.got)
}

func (p *fakePublisher) ids() []string {
	var ids []string
	for _, pb := range p.all() {
		ids = append(ids, pb.msg.ID)
	}
	return ids
}

// waitFor waits until cond holds, checking after each publish; it fails
// the test if that takes unreasonably long (something is stuck, not slow).
func waitFor(t *testing.T, p *fakePublisher, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-p.changed:
		case <-deadline.C:
			t.Fatalf("still waiting for %s; published so far: %v", what, p.ids())
		}
	}
}

// runRelay runs a relay until the test ends.
func runRelay(t *testing.T, r *outbox.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// relayOptions returns options for a relay on db with its hooks: on
// PostgreSQL it listens for commits.
func relayOptions(db *sql.DB, hooks outbox.Hooks) *outbox.RelayOptions {
	o := &outbox.RelayOptions{Hooks: hooks, PollInterval: time.Hour, RetryMin: time.Millisecond,
		RetryMax: 10 * time.Millisecond, LeaseTTL: time.Hour}
	if sqldialect.Of(db) == sqldialect.PostgreSQL {
		o.Notifier = pgoutbox.NewNotifier(db)
	}
	return o
}

func msg(id, key string) *pubsub.Message {
	return &pubsub.Message{ID: id, Source: "/test", Type: "test.happened", Key: key, Data: []byte(id)}
}

// enqueue writes msgs in a transaction of its own and commits it.
func enqueue(t *testing.T, db *sql.DB, ob *outbox.Outbox, msgs ...*pubsub.Message) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := ob.Enqueue(ctx, tx, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func openOutbox(t *testing.T, db *sql.DB) *outbox.Outbox {
	t.Helper()
	ob, err := outbox.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ob
}

func TestRoundTrip(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		ob := openOutbox(t, db)
		full := &pubsub.Message{ID: "1", Source: "/shop/orders", Type: "shop.order.placed", Subject: "order/1",
			Time: time.Date(2026, 11, 26, 1, 2, 3, 456789000, time.UTC), DataContentType: "application/json",
			DataSchema: "https://example.com/order.json", Key: "k", Extensions: map[string]string{"traceparent": "00-abc-def-01"},
			Data: []byte(`{"total":42}`)}
		bare := &pubsub.Message{ID: "2", Source: "/shop/orders", Type: "shop.order.placed", Data: []byte{}}
		enqueue(t, db, ob, full, bare)
		p := newFakePublisher()
		runRelay(t, outbox.NewRelay(ob, p.as("r"), relayOptions(db, outbox.Hooks{})))
		waitFor(t, p, "two messages", func() bool { return len(p.all()) == 2 })
		var got []*pubsub.Message
		for _, pb := range p.all() {
			got = append(got, pb.msg)
		}
		if diff := cmp.Diff([]*pubsub.Message{full, bare}, got); diff != "" {
			t.Errorf("published (-want +got):\n%s", diff)
		}
	})
}

func TestEnqueueInvalid(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		ob := openOutbox(t, db)
		tests := []struct {
			name string
			msgs []*pubsub.Message
		}{
			{"nil", []*pubsub.Message{msg("1", "k"), nil}},
			{"no source", []*pubsub.Message{{ID: "1", Type: "t"}}},
			{"bad extension", []*pubsub.Message{{ID: "1", Source: "/s", Type: "t", Extensions: map[string]string{"Bad-Name": "x"}}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := context.Background()
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = ob.Enqueue(ctx, tx, tt.msgs...)
				if !errors.Is(err, pubsub.ErrInvalidMessage) {
					t.Errorf("Enqueue: got %v, want pubsub.ErrInvalidMessage", err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				if n, err := ob.Pending(ctx); err != nil || n != 0 {
					t.Errorf("Pending = %d, %v; want 0", n, err)
				}
			})
		}
	})
}

func TestOpenInvalidTable(t *testing.T) {
	db := sqltest.SQLite(t)
	for _, name := range []string{"Outbox", "1box", "out-box", "a b"} {
		if _, err := outbox.Open(context.Background(), db, &outbox.Options{Table: name}); !errors.Is(err, outbox.ErrInvalidOptions) {
			t.Errorf("Open(table %q): got %v, want ErrInvalidOptions", name, err)
		}
	}
}

func TestRolledBackNeverPublished(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		ob := openOutbox(t, db)
		p := newFakePublisher()
		runRelay(t, outbox.NewRelay(ob, p.as("r"), relayOptions(db, outbox.Hooks{})))
		ctx := context.Background()
		for i := range 3 {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := ob.Enqueue(ctx, tx, msg(fmt.Sprint("rolled-back-", i), "k")); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			enqueue(t, db, ob, msg(fmt.Sprint("committed-", i), "k"))
		}
		want := []string{"committed-0", "committed-1", "committed-2"}
		waitFor(t, p, "the committed messages", func() bool { return len(p.all()) >= len(want) })
		if diff := cmp.Diff(want, p.ids()); diff != "" {
			t.Errorf("published (-want +got):\n%s", diff)
		}
	})
}

// TestWakeOnCommit proves the relay publishes on commit, not on its poll:
// the poll interval is an hour.
func TestWakeOnCommit(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		ob := openOutbox(t, db)
		p := newFakePublisher()
		idle := make(chan struct{}, 1)
		runRelay(t, outbox.NewRelay(ob, p.as("r"), relayOptions(db, outbox.Hooks{OnIdle: func() {
			select {
			case idle <- struct{}{}:
			default:
			}
		}})))
		<-idle // the relay found the outbox empty and waits
		for i := range 5 {
			id := fmt.Sprint(i)
			enqueue(t, db, ob, msg(id, "k"))
			waitFor(t, p, "message "+id, func() bool { return slices.Contains(p.ids(), id) })
		}
	})
}

// TestOrderPerKey writes transactions of a few keys from concurrent
// writers. Each transaction enqueues a message and then increments its
// key's counter, recording the count with the message's ID: per key, the
// counts are the commit order, and the messages must be published in that
// order, exactly once (one relay, no failures). Enqueuing before the
// business write is the case where a sequence taken at insert is not the
// commit order.
func TestOrderPerKey(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		ob := openOutbox(t, db)
		d := sqldialect.Of(db)
		for _, q := range []string{"CREATE TABLE counters (k TEXT PRIMARY KEY, n BIGINT NOT NULL)",
			"CREATE TABLE counted (id TEXT PRIMARY KEY, k TEXT NOT NULL, n BIGINT NOT NULL)",
			"INSERT INTO counters VALUES ('k0', 0), ('k1', 0), ('k2', 0)"} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		p := newFakePublisher()
		opts := relayOptions(db, outbox.Hooks{})
		opts.MaxBatch = 7
		runRelay(t, outbox.NewRelay(ob, p.as("r"), opts))
		const writers, txs = 4, 25
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range txs {
					key := fmt.Sprintf("k%d", (w+i)%3)
					id := fmt.Sprintf("w%d-%d", w, i)
					retryTx(t, db, func(tx *sql.Tx) error {
						ctx := context.Background()
						if err := ob.Enqueue(ctx, tx, msg(id, key)); err != nil {
							return err
						}
						if _, err := tx.ExecContext(ctx, d.Rebind("UPDATE counters SET n = n + 1 WHERE k = ?"), key); err != nil {
							return err
						}
						_, err := tx.ExecContext(ctx, d.Rebind("INSERT INTO counted SELECT ?, k, n FROM counters WHERE k = ?"), id, key)
						return err
					})
				}
			})
		}
		wg.Wait()
		waitFor(t, p, "every message", func() bool { return len(p.all()) == writers*txs })
		count := map[string]int64{}
		rows, err := db.Query("SELECT id, n FROM counted")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			var n int64
			if err := rows.Scan(&id, &n); err != nil {
				t.Fatal(err)
			}
			count[id] = n
		}
		rows.Close()
		got := map[string][]int64{}
		want := map[string][]int64{}
		for _, pb := range p.all() {
			got[pb.msg.Key] = append(got[pb.msg.Key], count[pb.msg.ID])
		}
		for k, ns := range got {
			for i := range ns {
				want[k] = append(want[k], int64(i+1))
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("per key, the commit counts in publish order (-want +got):\n%s", diff)
		}
	})
}

// retryTx runs f in a transaction and commits it, again when PostgreSQL
// aborted it as deadlocked or SQLite found the database busy.
func retryTx(t *testing.T, db *sql.DB, f func(tx *sql.Tx) error) {
	ctx := context.Background()
	for attempt := 1; ; attempt++ {
		tx, err := db.BeginTx(ctx, nil)
		if err == nil {
			err = f(tx)
			if err == nil {
				err = tx.Commit()
			} else {
				tx.Rollback()
			}
		}
		if err == nil {
			return
		}
		if attempt == 20 {
			t.Errorf("transaction failed %d times, last: %v", attempt, err)
			return
		}
		t.Logf("transaction: %v (retrying)", err)
	}
}

// TestBrokerDown: while the broker fails, the messages stay in the outbox;
// they are published, once, when it is back.
func TestBrokerDown(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		ob := openOutbox(t, db)
		p := newFakePublisher()
		p.setFail(5)
		failures := make(chan outbox.PublishError)
		checked := make(chan struct{})
		runRelay(t, outbox.NewRelay(ob, p.as("r"), relayOptions(db, outbox.Hooks{
			OnPublishError: func(e outbox.PublishError) {
				failures <- e
				<-checked // the relay waits while the test looks at the outbox
			},
		})))
		enqueue(t, db, ob, msg("1", "k"), msg("2", "k"))
		for range 5 {
			e := <-failures
			if !errors.Is(e.Err, errBrokerDown) || e.Messages != 2 {
				t.Errorf("OnPublishError got %+v, want 2 messages failing with errBrokerDown", e)
			}
			if n, err := ob.Pending(context.Background()); err != nil || n != 2 {
				t.Errorf("while the broker is down: Pending = %d, %v; want 2", n, err)
			}
			checked <- struct{}{}
		}
		waitFor(t, p, "both messages", func() bool { return len(p.all()) == 2 })
		if diff := cmp.Diff([]string{"1", "2"}, p.ids()); diff != "" {
			t.Errorf("published (-want +got):\n%s", diff)
		}
	})
}

// A *pubsub.Topic is what a relay publishes with in a service.
var _ outbox.Publisher = (*pubsub.Topic)(nil)

// TestOneConnectionPool: on SQLite, a pool of one connection (writers
// queue in Go, not in SQLite's sleeping busy handler) serves the
// transactions that enqueue, of prepared and unprepared sizes, and the
// relay.
func TestOneConnectionPool(t *testing.T) {
	db := sqltest.SQLite(t)
	db.SetMaxOpenConns(1)
	ob := openOutbox(t, db)
	p := newFakePublisher()
	runRelay(t, outbox.NewRelay(ob, p.as("r"), relayOptions(db, outbox.Hooks{})))
	var want []string
	for _, size := range []int{1, 11, 3} {
		var msgs []*pubsub.Message
		for range size {
			id := fmt.Sprint(len(want))
			want = append(want, id)
			msgs = append(msgs, msg(id, "k"))
		}
		enqueue(t, db, ob, msgs...)
	}
	waitFor(t, p, "every message", func() bool { return len(p.all()) == len(want) })
	if diff := cmp.Diff(want, p.ids()); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
}
