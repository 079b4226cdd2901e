package outbox_test

// The chaos test runs a small system as child processes (this test binary,
// re-executed with FJORD_OUTBOX_CHAOS_ROLE set) around an embedded NATS
// server that the parent starts:
//
//   - producer: a service that writes orders and their messages in one
//     SQLite transaction (some transactions roll back), and runs a relay;
//   - relay: a second relay process on the producer's database, competing
//     for the lease, which takes over when the producer's relay dies;
//   - consumer: a pubsub.Router on a durable JetStream consumer, whose
//     handler applies each message to the consumer's own SQLite database
//     through the inbox; the acknowledgement follows the commit, so a kill
//     in between redelivers messages that already took effect.
//
// Relays publish through pubsub.Topic and natspubsub. The parent kills
// each child with SIGKILL at random points, again and again, until the
// producer has committed FJORD_CHAOS_MESSAGES messages (default 10,000)
// and the others have caught up. Then every committed message has taken
// effect exactly once, no rolled-back message was delivered, the stream
// holds each key's messages in commit order (first copies; a relay that
// dies after publishing and before deleting publishes a batch again), the
// consumer applied each key's messages in commit order (n = 1, 2, 3… per
// key, copies skipped by the inbox), and the consumer's table equals the
// producer's.
//
// Per-key order at the consumer across kills rests on
// natspubsub.SubscriptionOptions.ResumeFromAckFloor: a restarted consumer
// rewinds the durable consumer to its acknowledgement floor, so the
// messages a killed one left unacknowledged come again first, in stream
// order, rather than AckWait later behind newer ones. Only one consumer
// process runs at a time, as that option requires.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fjord-data/fjord/inbox"
	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/outbox"
	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/natspubsub"
	"github.com/fjord-data/fjord/pubsub/natspubsub/natsembed"
)

const (
	envChaosRole     = "FJORD_OUTBOX_CHAOS_ROLE"
	envChaosDir      = "FJORD_OUTBOX_CHAOS_DIR"
	envChaosURL      = "FJORD_OUTBOX_CHAOS_NATS"
	envChaosStream   = "FJORD_OUTBOX_CHAOS_STREAM"
	envChaosMessages = "FJORD_CHAOS_MESSAGES"
	chaosKeys        = 40
	chaosSource      = "/chaos/orders"
)

func chaosMessages(t *testing.T) int {
	if v := os.Getenv(envChaosMessages); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", envChaosMessages, v)
		}
		return n
	}
	if testing.Short() {
		return 1000
	}
	if raceEnabled {
		return 2000 // the children are ten times slower
	}
	return 10000
}

// chaosEnv is what a child needs, from its environment.
type chaosEnv struct {
	dir, url, stream, subject string
	messages                  int
}

func childEnv() chaosEnv {
	n, _ := strconv.Atoi(os.Getenv(envChaosMessages))
	stream := os.Getenv(envChaosStream)
	return chaosEnv{dir: os.Getenv(envChaosDir), url: os.Getenv(envChaosURL), stream: stream,
		subject: "chaos." + stream, messages: n}
}

func chaosChild() {
	env := childEnv()
	var err error
	switch role := os.Getenv(envChaosRole); role {
	case "producer":
		err = runProducer(env)
	case "relay":
		err = runRelayProcess(env)
	case "consumer":
		err = runConsumer(env)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos child:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

// progress prints one line per unit of progress: the parent kills a child
// after a random number of lines.
// It is safe for concurrent use.
type progress struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func newProgress() *progress { return &progress{w: bufio.NewWriter(os.Stdout)} }

func (p *progress) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
	p.w.Flush()
}

// openSQLite opens the SQLite database at path and runs the statements
// that create its tables.
func openSQLite(path string, schema ...string) (*sql.DB, error) {
	db, err := sqltest.OpenSQLite(path)
	if err != nil {
		return nil, err
	}
	for _, q := range schema {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

func openProducerDB(dir string) (*sql.DB, *outbox.Outbox, error) {
	db, err := openSQLite(filepath.Join(dir, "producer.db"),
		"CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, k TEXT NOT NULL, n INTEGER NOT NULL)",
		"CREATE TABLE IF NOT EXISTS producer_done (done INTEGER)")
	if err != nil {
		return nil, nil, err
	}
	ob, err := outbox.Open(context.Background(), db, nil)
	return db, ob, err
}

// announcingPublisher prints a progress line as it starts publishing a
// batch, so that kills land in the middle of publishing, between the
// broker's acknowledgement and the removal of the rows, as often as
// elsewhere.
type announcingPublisher struct {
	outbox.Publisher
	out *progress
}

func (p announcingPublisher) Publish(ctx context.Context, msgs ...*pubsub.Message) error {
	p.out.line("publishing %d", len(msgs))
	return p.Publisher.Publish(ctx, msgs...)
}

func chaosRelayOptions(p *progress) *outbox.RelayOptions {
	return &outbox.RelayOptions{MaxBatch: 100, PollInterval: 20 * time.Millisecond, LeaseTTL: 400 * time.Millisecond,
		RetryMin: 5 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		Hooks: outbox.Hooks{OnPublish: func(i outbox.PublishInfo) { p.line("published %d", i.Messages) }}}
}

// runProducer commits orders with their messages until the database holds
// env.messages of them, rolling back one transaction in ten, while its
// relay publishes.
func runProducer(env chaosEnv) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rp, err := openRelayParts(ctx, env)
	if err != nil {
		return err
	}
	defer rp.close()
	db, ob, out := rp.db, rp.ob, rp.out
	relay := outbox.NewRelay(ob, rp.pub, rp.opts)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(ctx) }()
	defer func() {
		cancel()
		<-relayDone
	}()
	var committed int
	if err := db.QueryRow("SELECT count(*) FROM orders").Scan(&committed); err != nil {
		return err
	}
	for committed < env.messages {
		size := min(1+mrand.IntN(8), env.messages-committed)
		rollback := mrand.IntN(10) == 0
		if err := produce(ctx, db, ob, size, rollback); err != nil {
			return err
		}
		if !rollback {
			committed += size
			out.line("committed %d", committed)
		}
	}
	_, err = db.Exec("INSERT INTO producer_done VALUES (1)")
	return err
}

// produce writes size orders and their messages in one transaction, and
// commits it or rolls it back.
func produce(ctx context.Context, db *sql.DB, ob *outbox.Outbox, size int, rollback bool) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	msgs := make([]*pubsub.Message, size)
	for i := range msgs {
		k := fmt.Sprint("k", mrand.IntN(chaosKeys))
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(n), 0) + 1 FROM orders WHERE k = ?", k).Scan(&n); err != nil {
			return err
		}
		id := fmt.Sprintf("%s-%d", k, n)
		if rollback {
			id = "rolled-back-" + id + "-" + randomHex()
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO orders VALUES (?, ?, ?)", id, k, n); err != nil {
			return err
		}
		msgs[i] = &pubsub.Message{ID: id, Source: chaosSource, Type: "chaos.order.placed", Key: k,
			Extensions: map[string]string{"n": strconv.Itoa(n)}}
	}
	if err := ob.Enqueue(ctx, tx, msgs...); err != nil {
		return err
	}
	if rollback {
		return tx.Rollback()
	}
	return tx.Commit()
}

// relayParts are what a process that runs a relay opens: the producer's
// database and outbox, the topic (connected to the test's NATS server),
// its progress output and relay options.
type relayParts struct {
	db    *sql.DB
	ob    *outbox.Outbox
	pub   outbox.Publisher
	out   *progress
	opts  *outbox.RelayOptions
	close func()
}

func openRelayParts(ctx context.Context, env chaosEnv) (*relayParts, error) {
	db, ob, err := openProducerDB(env.dir)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(env.url, nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	dt, err := natspubsub.OpenTopic(ctx, nc, env.subject, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	topic := pubsub.NewTopic(dt, nil)
	out := newProgress()
	return &relayParts{db: db, ob: ob, pub: announcingPublisher{topic, out}, out: out, opts: chaosRelayOptions(out),
		close: func() {
			topic.Close()
			nc.Close()
		}}, nil
}

func randomHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// runRelayProcess runs a relay on the producer's database until the
// producer is done and the outbox is empty.
func runRelayProcess(env chaosEnv) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rp, err := openRelayParts(ctx, env)
	if err != nil {
		return err
	}
	defer rp.close()
	db, ob, opts := rp.db, rp.ob, rp.opts
	var checkErr error
	opts.Hooks.OnIdle = func() {
		var done, pending int
		if err := db.QueryRow("SELECT count(*) FROM producer_done").Scan(&done); err != nil {
			checkErr = err
			cancel()
		}
		if pending, err = ob.Pending(ctx); err != nil {
			checkErr = err
			cancel()
		}
		if done > 0 && pending == 0 {
			cancel()
		}
	}
	err = outbox.NewRelay(ob, rp.pub, opts).Run(ctx)
	if checkErr != nil {
		return checkErr
	}
	if !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func openConsumerDB(dir string) (*sql.DB, *inbox.Inbox, error) {
	db, err := openSQLite(filepath.Join(dir, "consumer.db"),
		"CREATE TABLE IF NOT EXISTS applied (id TEXT NOT NULL, k TEXT NOT NULL, n INTEGER NOT NULL)",
		"CREATE TABLE IF NOT EXISTS last_n (k TEXT PRIMARY KEY, n INTEGER NOT NULL)",
		"CREATE TABLE IF NOT EXISTS out_of_order (id TEXT NOT NULL, n INTEGER NOT NULL, last INTEGER NOT NULL)",
		"CREATE TABLE IF NOT EXISTS duplicates (n INTEGER NOT NULL)")
	if err != nil {
		return nil, nil, err
	}
	in, err := inbox.Open(context.Background(), db, &inbox.Options{Hooks: inbox.Hooks{OnDuplicate: func(string, *pubsub.Message) {
		db.Exec("INSERT INTO duplicates VALUES (1)")
	}}})
	return db, in, err
}

// publishedFile is created by the parent once the producer and the relay
// exited by themselves (everything committed is in the stream); it holds
// the number of committed messages.
const publishedFile = "published"

const chaosConsumer = "chaos-consumer"

// runConsumer applies the stream's messages through a Router and the
// inbox until it has applied as many as the parent says were committed.
func runConsumer(env chaosEnv) error {
	db, in, err := openConsumerDB(env.dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc, err := nats.Connect(env.url, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	sub, err := natspubsub.OpenSubscription(ctx, nc, env.subject, chaosConsumer,
		&natspubsub.SubscriptionOptions{AckWait: time.Second, PollWait: time.Second, ResumeFromAckFloor: true})
	if err != nil {
		return err
	}
	out := newProgress()
	var failed error
	var mu sync.Mutex
	r := pubsub.NewRouter(sub, &pubsub.RouterOptions{Consumer: chaosConsumer, Topic: env.subject,
		MaxAttempts: 1 << 20, MinBackoff: time.Millisecond, MaxBackoff: 50 * time.Millisecond, AckDelay: time.Millisecond,
		Hooks: pubsub.RouterHooks{
			OnHandled: func(i pubsub.HandleInfo) { out.line("handled %d", len(i.Messages)) },
			OnParked: func(i pubsub.ParkInfo) {
				mu.Lock()
				failed = fmt.Errorf("parked: %+v", i)
				mu.Unlock()
				cancel()
			},
		}})
	r.Handle("chaos.order.placed", in.Handler(chaosConsumer, apply))
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			mu.Lock()
			defer mu.Unlock()
			return errors.Join(failed, err)
		case <-tick.C:
		}
		want, err := os.ReadFile(filepath.Join(env.dir, publishedFile))
		if err != nil {
			continue
		}
		var applied int
		if err := db.QueryRow("SELECT count(*) FROM applied").Scan(&applied); err != nil {
			return err
		}
		if strconv.Itoa(applied) == string(want) {
			cancel()
			return ignoreCanceled(<-done)
		}
	}
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// apply is the consumer's business logic: it records the order and checks
// that it is the next of its key.
func apply(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error {
	n, err := strconv.Atoi(m.Extensions["n"])
	if err != nil {
		return fmt.Errorf("message %s: extension n: %w", m.ID, err)
	}
	var last int
	err = tx.QueryRowContext(ctx, "SELECT n FROM last_n WHERE k = ?", m.Key).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if n != last+1 {
		if _, err := tx.ExecContext(ctx, "INSERT INTO out_of_order VALUES (?, ?, ?)", m.ID, n, last); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO last_n VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET n = excluded.n", m.Key, n); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO applied VALUES (?, ?, ?)", m.ID, m.Key, n)
	return err
}

func TestChaos(t *testing.T) {
	if testing.Short() && os.Getenv(envChaosMessages) == "" {
		t.Skip("the chaos test runs child processes for a while; set " + envChaosMessages + " to run it with -short")
	}
	messages := chaosMessages(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ns, err := natsembed.Start(ctx, &natsembed.Options{Dir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	url := ns.ClientURL()
	stream := "CHAOS_" + strings.ToUpper(randomHex())
	if err := createStream(ctx, ns, stream, "chaos."+stream); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d messages", seed, messages)
	env := []string{envChaosDir + "=" + dir, envChaosURL + "=" + url, envChaosStream + "=" + stream,
		envChaosMessages + "=" + strconv.Itoa(messages)}
	// Kill each role after a random amount of its progress lines, up to
	// about a twentieth of what it prints in a whole run. A line saying a
	// batch is being published weighs as much as the transactions that
	// wrote the batch, so that the producer, which also runs a relay,
	// dies in the middle of publishing as often as in the middle of a
	// transaction.
	roles := []struct {
		name    string
		maxKill int
	}{
		{"producer", max(2, messages/5/20)},
		{"relay", max(2, messages/50/20)},
		{"consumer", max(2, messages/20)}, // a line per message
	}
	var publishing, consuming sync.WaitGroup
	kills := make([]int, len(roles))
	for i, role := range roles {
		rng := mrand.New(mrand.NewPCG(seed, uint64(i)))
		wg := &publishing
		if role.name == "consumer" {
			wg = &consuming
		}
		wg.Go(func() {
			kills[i] = superviseChild(ctx, t, role.name, env, func() int { return 1 + rng.IntN(role.maxKill) })
		})
	}
	publishing.Wait()
	committed := countRows(t, filepath.Join(dir, "producer.db"), "orders")
	if err := os.WriteFile(filepath.Join(dir, publishedFile), []byte(strconv.Itoa(committed)), 0o644); err != nil {
		t.Error(err)
		cancel()
	}
	consuming.Wait()
	for i, role := range roles {
		t.Logf("%s killed %d times", role.name, kills[i])
	}
	if t.Failed() {
		return
	}
	verifyChaos(t, dir, messages)
	verifyStream(t, ns, stream)
}

// createStream creates the test's stream, which keeps every message.
func createStream(ctx context.Context, ns *natsembed.Server, stream, subject string) error {
	nc, err := ns.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	dt, err := natspubsub.OpenTopic(ctx, nc, subject, &natspubsub.TopicOptions{
		Stream: &jetstream.StreamConfig{Name: stream, Storage: jetstream.FileStorage}})
	if err != nil {
		return err
	}
	return dt.Close()
}

func countRows(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sqltest.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// verifyStream reads the whole stream and checks that the first copy of
// each key's messages come in commit order, 1, 2, 3…, and counts the
// copies a relay published again.
func verifyStream(t *testing.T, ns *natsembed.Server, stream string) {
	ctx := context.Background()
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := natspubsub.OpenSubscription(ctx, nc, "chaos."+stream, "verify", &natspubsub.SubscriptionOptions{StreamName: stream})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	last := map[string]int{}
	seen := map[string]bool{}
	copies := 0
	for read := uint64(0); read < info.State.Msgs; {
		msgs, err := sub.Receive(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]driver.AckID, len(msgs))
		for i, m := range msgs {
			ids[i] = m.AckID
			id := m.Attributes["id"]
			if seen[id] {
				copies++
				continue
			}
			seen[id] = true
			n, _ := strconv.Atoi(m.Attributes["n"])
			if n != last[m.Key]+1 {
				t.Errorf("stream: %s (key %s, number %d) follows number %d", id, m.Key, n, last[m.Key])
			}
			last[m.Key] = n
		}
		read += uint64(len(msgs))
		if err := sub.Ack(ctx, ids); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("the stream holds %d messages, %d of them copies published again", info.State.Msgs, copies)
}

// superviseChild runs the role's child again and again, killing it after
// killAfter() weighed lines, until it exits by itself; it returns the
// kills.
func superviseChild(ctx context.Context, t *testing.T, role string, env []string, killAfter func() int) int {
	kills := 0
	for ctx.Err() == nil {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestChaos$")
		cmd.Env = append(os.Environ(), append(env, envChaosRole+"="+role)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Error(err)
			return kills
		}
		if err := cmd.Start(); err != nil {
			t.Error(err)
			return kills
		}
		limit := killAfter()
		sc := bufio.NewScanner(stdout)
		lines := 0
		for sc.Scan() {
			weight := 1
			if role == "producer" && strings.HasPrefix(sc.Text(), "publishing") {
				weight = 25 // the transactions of a batch of 100
			}
			if lines < limit && lines+weight >= limit {
				cmd.Process.Kill()
			}
			lines += weight
		}
		err = cmd.Wait()
		switch {
		case err == nil:
			return kills
		case strings.Contains(err.Error(), "killed") && lines >= limit:
			kills++
		default:
			t.Errorf("%s: %v; stderr:\n%s", role, err, stderr.String())
			return kills
		}
	}
	t.Errorf("%s: %v", role, ctx.Err())
	return kills
}

type chaosOrder struct {
	ID, K string
	N     int
}

func readOrders(t *testing.T, db *sql.DB, q string) map[string]chaosOrder {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]chaosOrder{}
	for rows.Next() {
		var o chaosOrder
		if err := rows.Scan(&o.ID, &o.K, &o.N); err != nil {
			t.Fatal(err)
		}
		if _, dup := got[o.ID]; dup {
			t.Errorf("%s applied twice", o.ID)
		}
		got[o.ID] = o
	}
	return got
}

// firstOutOfOrder lists the first messages the consumer applied out of
// their key's order, with the number applied before each.
func firstOutOfOrder(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SELECT id, n, last FROM out_of_order ORDER BY rowid LIMIT 10")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id string
		var n, last int
		if err := rows.Scan(&id, &n, &last); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s (number %d) after number %d\n", id, n, last)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func verifyChaos(t *testing.T, dir string, messages int) {
	pdb, ob, err := openProducerDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()
	cdb, _, err := openConsumerDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cdb.Close()
	want := readOrders(t, pdb, "SELECT id, k, n FROM orders")
	got := readOrders(t, cdb, "SELECT id, k, n FROM applied")
	if len(want) != messages {
		t.Errorf("the producer committed %d orders, want %d", len(want), messages)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("consumer's orders (-producer's +consumer's):\n%s", diff)
	}
	for id := range got {
		if strings.HasPrefix(id, "rolled-back-") {
			t.Errorf("rolled-back message %s was delivered", id)
		}
	}
	var outOfOrder, dups int
	if err := cdb.QueryRow("SELECT count(*) FROM out_of_order").Scan(&outOfOrder); err != nil {
		t.Fatal(err)
	}
	t.Logf("the consumer applied %d messages out of their key's order", outOfOrder)
	if outOfOrder > 0 {
		t.Errorf("the consumer applied %d messages out of their key's order; the first ones:\n%s", outOfOrder, firstOutOfOrder(t, cdb))
	}
	if n, err := ob.Pending(context.Background()); err != nil || n != 0 {
		t.Errorf("outbox: Pending = %d, %v; want 0", n, err)
	}
	cdb.QueryRow("SELECT coalesce(sum(n), 0) FROM duplicates").Scan(&dups)
	t.Logf("%d orders; the inbox skipped %d redelivered messages", len(want), dups)
}
