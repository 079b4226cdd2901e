package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fjord-data/fjord/inbox"
	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/outbox"
	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/driver"
)

// OutboxConfig configures the outbox scenarios: a producer that commits
// business rows and their messages in SQLite transactions, a relay that
// publishes them through a pubsub.Topic, and a consumer (a pubsub.Router
// with the inbox) that applies them to another SQLite database, all in
// this process.
type OutboxConfig struct {
	// Scenarios to run, in this order; empty runs all (OutboxScenarios).
	Scenarios []string
	// Messages per scenario; 0 takes each scenario's default.
	Messages int
	// Size is each message's data in bytes; 0 is 256.
	Size int
	// Rate is e2e-rate's commit rate in messages per second; 0 is 1,000.
	Rate int
	// TxSize is how many messages one producer transaction of sustained
	// writes; 0 is 10.
	TxSize int
	// Dir holds each scenario's temporary directory (the SQLite files);
	// "" is the system's temporary directory.
	Dir string
	// OnResult, if set, is called as each scenario finishes.
	OnResult func(Result)
}

type outboxScenario struct {
	name, op string
	messages int
	run      func(ctx context.Context, e *outboxEnv, p outboxParams) (Result, error)
}

type outboxParams struct {
	messages, size, rate, txSize int
}

var outboxScenarios = []outboxScenario{
	{"sustained", "commit→applied through the outbox, producer at full speed (transactions of --tx-size messages)", 100_000, benchOutboxSustained},
	{"e2e-rate", "commit→applied latency at a fixed commit rate, one message per transaction", 5_000, benchOutboxRate},
}

// OutboxScenarios returns the names of the outbox scenarios.
func OutboxScenarios() []string {
	var names []string
	for _, sc := range outboxScenarios {
		names = append(names, sc.name)
	}
	return names
}

// Outbox runs the outbox scenarios of cfg, each on a fresh destination
// from open and fresh SQLite databases, and returns their results.
func Outbox(ctx context.Context, open OpenPubSub, cfg OutboxConfig) ([]Result, error) {
	names := cfg.Scenarios
	if len(names) == 0 {
		names = OutboxScenarios()
	}
	var results []Result
	for _, name := range names {
		i := -1
		for j, sc := range outboxScenarios {
			if sc.name == name {
				i = j
			}
		}
		if i < 0 {
			return results, fmt.Errorf("unknown outbox scenario %q", name)
		}
		sc := outboxScenarios[i]
		p := outboxParams{messages: orInt(cfg.Messages, sc.messages), size: orInt(cfg.Size, 256),
			rate: orInt(cfg.Rate, 1000), txSize: orInt(cfg.TxSize, 10)}
		r, err := runOutbox(ctx, open, cfg.Dir, sc, p)
		if err != nil {
			return results, fmt.Errorf("%s: %w", sc.name, err)
		}
		r.Scenario, r.Op = sc.name, sc.op
		results = append(results, r)
		if cfg.OnResult != nil {
			cfg.OnResult(r)
		}
	}
	return results, nil
}

// outboxEnv is one scenario's producer, relay and consumer.
type outboxEnv struct {
	producer *sql.DB
	ob       *outbox.Outbox
	insert   *sql.Stmt
	// start is set before the relay and the consumer start; committed[i]
	// is when message i's transaction committed, in nanoseconds since
	// start; applied counts the messages applied.
	start     time.Time
	committed []atomic.Int64
	lat       latencies
	applied   atomic.Int64
	allDone   chan struct{}
}

// noClose keeps pubsub.Topic from closing the destination's driver topic,
// which the destination's Close closes.
type noClose struct{ driver.Topic }

func (noClose) Close() error { return nil }

func runOutbox(ctx context.Context, open OpenPubSub, dir string, sc outboxScenario, p outboxParams) (r Result, err error) {
	tmp, err := os.MkdirTemp(dir, "fjord-bench-outbox-")
	if err != nil {
		return r, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()
	d, err := open(ctx, sc.name)
	if err != nil {
		return r, err
	}
	defer func() { err = errors.Join(err, d.Close()) }()
	e, consumerDB, err := openOutboxEnv(ctx, tmp, p.messages)
	if err != nil {
		return r, err
	}
	defer e.producer.Close()
	defer e.ob.Close()
	defer consumerDB.Close()
	in, err := inbox.Open(ctx, consumerDB, nil)
	if err != nil {
		return r, err
	}
	defer in.Close()
	applyStmt, err := consumerDB.PrepareContext(ctx, "INSERT INTO applied (id, data) VALUES (?, ?)")
	if err != nil {
		return r, err
	}
	defer applyStmt.Close()
	topic := pubsub.NewTopic(noClose{d.Topic}, nil)
	defer topic.Close()
	router := pubsub.NewRouter(d.Subscription, &pubsub.RouterOptions{Consumer: "bench", Topic: "bench", AckDelay: time.Millisecond,
		Hooks: pubsub.RouterHooks{OnHandled: e.onHandled}})
	apply := func(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error {
		_, err := tx.StmtContext(ctx, applyStmt).ExecContext(ctx, m.ID, m.Data)
		return err
	}
	router.HandleBatch("bench.order.placed", in.BatchHandler("bench", apply), &pubsub.BatchOptions{Size: 500, MaxWait: time.Millisecond})

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	relay := outbox.NewRelay(e.ob, topic, &outbox.RelayOptions{MaxBatch: 500})
	e.start = time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = relay.Run(runCtx) })
	wg.Go(func() { errs[1] = router.Run(runCtx) })
	r, err = sc.run(runCtx, e, p)
	if err == nil {
		select {
		case <-e.allDone:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	elapsed := time.Since(e.start)
	cancel()
	wg.Wait()
	for _, runErr := range errs {
		if runErr != nil && !errors.Is(runErr, context.Canceled) {
			err = errors.Join(err, runErr)
		}
	}
	r.Events = p.messages
	e.lat.summarize(&r, elapsed)
	return r, err
}

func openOutboxEnv(ctx context.Context, dir string, messages int) (*outboxEnv, *sql.DB, error) {
	producer, err := sqltest.OpenSQLite(filepath.Join(dir, "producer.db"))
	if err != nil {
		return nil, nil, err
	}
	consumer, err := sqltest.OpenSQLite(filepath.Join(dir, "consumer.db"))
	if err != nil {
		producer.Close()
		return nil, nil, err
	}
	// One connection each: writers queue in Go rather than in SQLite's
	// busy handler, which sleeps.
	producer.SetMaxOpenConns(1)
	consumer.SetMaxOpenConns(1)
	e := &outboxEnv{producer: producer, committed: make([]atomic.Int64, messages), lat: make(latencies, messages),
		allDone: make(chan struct{})}
	for _, q := range []struct {
		db *sql.DB
		q  string
	}{
		{producer, "CREATE TABLE orders (id INTEGER PRIMARY KEY, data BLOB)"},
		{consumer, "CREATE TABLE applied (id TEXT PRIMARY KEY, data BLOB)"},
	} {
		if _, err := q.db.ExecContext(ctx, q.q); err != nil {
			return nil, nil, errors.Join(err, producer.Close(), consumer.Close())
		}
	}
	if e.ob, err = outbox.Open(ctx, producer, nil); err != nil {
		return nil, nil, errors.Join(err, producer.Close(), consumer.Close())
	}
	if e.insert, err = producer.PrepareContext(ctx, "INSERT INTO orders (id, data) VALUES (?, ?)"); err != nil {
		return nil, nil, errors.Join(err, producer.Close(), consumer.Close())
	}
	return e, consumer, nil
}

// onHandled records the latency of each applied message (its batch
// committed before the hook runs).
func (e *outboxEnv) onHandled(info pubsub.HandleInfo) {
	at := time.Since(e.start)
	for _, m := range info.Messages {
		i, err := strconv.Atoi(m.ID)
		if err != nil || i < 0 || i >= len(e.lat) {
			continue
		}
		e.lat[i] = at - time.Duration(e.committed[i].Load())
	}
	if e.applied.Add(int64(len(info.Messages))) == int64(len(e.lat)) {
		close(e.allDone)
	}
}

// commit writes messages first…first+n-1 (and their business rows) in one
// transaction and records when it committed.
func (e *outboxEnv) commit(ctx context.Context, first, n int, data []byte) error {
	tx, err := e.producer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	insert := tx.StmtContext(ctx, e.insert)
	msgs := make([]*pubsub.Message, n)
	for j := range msgs {
		id := first + j
		if _, err := insert.ExecContext(ctx, id, data); err != nil {
			return err
		}
		msgs[j] = &pubsub.Message{ID: strconv.Itoa(id), Source: "/bench/orders", Type: "bench.order.placed",
			Key: "order-" + strconv.Itoa(id%64), Data: data}
	}
	if err := e.ob.Enqueue(ctx, tx, msgs...); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	at := int64(time.Since(e.start))
	for j := range n {
		e.committed[first+j].Store(at)
	}
	return nil
}

// benchOutboxSustained commits transactions of p.txSize messages as fast
// as SQLite takes them; the rate is messages applied per second, from the
// first commit to the last message applied.
func benchOutboxSustained(ctx context.Context, e *outboxEnv, p outboxParams) (Result, error) {
	data := payload(p.size)
	for i := 0; i < p.messages; i += p.txSize {
		if err := e.commit(ctx, i, min(p.txSize, p.messages-i), data); err != nil {
			return Result{}, err
		}
	}
	return Result{Writers: 1}, nil
}

// benchOutboxRate commits one message per transaction at p.rate.
func benchOutboxRate(ctx context.Context, e *outboxEnv, p outboxParams) (Result, error) {
	data := payload(p.size)
	interval := time.Second / time.Duration(p.rate)
	for i := range p.messages {
		if wait := time.Until(e.start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait) // pacing the producer, not waiting for a result
		}
		if err := e.commit(ctx, i, 1, data); err != nil {
			return Result{}, err
		}
	}
	return Result{Writers: 1}, nil
}
