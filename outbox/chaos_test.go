package outbox_test

// The chaos test runs a small system as child processes (this test binary,
// re-executed with FJORD_OUTBOX_CHAOS_ROLE set) around an embedded NATS
// server that the parent starts:
//
//   - producer: a service that writes orders and their messages in one
//     SQLite transaction (some transactions roll back), and runs a relay;
//   - relay: a second relay process on the producer's database, competing
//     for the lease, which takes over when the producer's relay dies;
//   - consumer: reads the stream in order and applies each message to its
//     own SQLite database through the inbox, acknowledging (storing its
//     stream position) in a separate transaction afterwards, as a broker
//     acknowledgement would be.
//
// The parent kills each of them with SIGKILL at random points, again and
// again, until the producer has committed FJORD_CHAOS_MESSAGES messages
// (default 10,000) and the others have caught up. Then every committed
// message has taken effect exactly once, no rolled-back message was
// delivered, each key's messages were applied in order, and the
// consumer's table equals the producer's.

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

	"github.com/fjord-data/fjord/inbox"
	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/outbox"
	"github.com/fjord-data/fjord/pubsub"
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
type progress struct{ w *bufio.Writer }

func newProgress() *progress { return &progress{bufio.NewWriter(os.Stdout)} }

func (p *progress) line(format string, args ...any) {
	fmt.Fprintf(p.w, format+"\n", args...)
	p.w.Flush()
}

func openProducerDB(dir string) (*sql.DB, *outbox.Outbox, error) {
	db, err := sqltest.OpenSQLite(filepath.Join(dir, "producer.db"))
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, k TEXT NOT NULL, n INTEGER NOT NULL)",
		"CREATE TABLE IF NOT EXISTS producer_done (done INTEGER)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, nil, err
		}
	}
	ob, err := outbox.Open(ctx, db, nil)
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
	db, ob, err := openProducerDB(env.dir)
	if err != nil {
		return err
	}
	pub, err := newNATSPublisher(env.url, env.subject)
	if err != nil {
		return err
	}
	out := newProgress()
	relay := outbox.NewRelay(ob, announcingPublisher{pub, out}, chaosRelayOptions(out))
	ctx, cancel := context.WithCancel(context.Background())
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

func randomHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// runRelayProcess runs a relay on the producer's database until the
// producer is done and the outbox is empty.
func runRelayProcess(env chaosEnv) error {
	db, ob, err := openProducerDB(env.dir)
	if err != nil {
		return err
	}
	pub, err := newNATSPublisher(env.url, env.subject)
	if err != nil {
		return err
	}
	out := newProgress()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := chaosRelayOptions(out)
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
	err = outbox.NewRelay(ob, announcingPublisher{pub, out}, opts).Run(ctx)
	if checkErr != nil {
		return checkErr
	}
	if !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func openConsumerDB(dir string) (*sql.DB, *inbox.Inbox, error) {
	db, err := sqltest.OpenSQLite(filepath.Join(dir, "consumer.db"))
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS applied (id TEXT NOT NULL, k TEXT NOT NULL, n INTEGER NOT NULL)",
		"CREATE TABLE IF NOT EXISTS last_n (k TEXT PRIMARY KEY, n INTEGER NOT NULL)",
		"CREATE TABLE IF NOT EXISTS out_of_order (id TEXT NOT NULL, n INTEGER NOT NULL, last INTEGER NOT NULL)",
		"CREATE TABLE IF NOT EXISTS position (seq INTEGER NOT NULL)",
		"CREATE TABLE IF NOT EXISTS duplicates (n INTEGER NOT NULL)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, nil, err
		}
	}
	in, err := inbox.Open(ctx, db, nil)
	return db, in, err
}

// publishedFile is created by the parent once the producer and the relay
// exited by themselves: everything committed is in the stream.
const publishedFile = "published"

// runConsumer applies the stream's messages through the inbox until it
// finds no more and the parent says everything is published.
func runConsumer(env chaosEnv) error {
	db, in, err := openConsumerDB(env.dir)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var pos uint64
	if err := db.QueryRow("SELECT coalesce(max(seq), 0) FROM position").Scan(&pos); err != nil {
		return err
	}
	r, err := newStreamReader(ctx, env.url, env.stream, pos+1)
	if err != nil {
		return err
	}
	defer r.Close()
	out := newProgress()
	for {
		batch, err := r.next(100, 100*time.Millisecond)
		if len(batch) == 0 {
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
				return err
			}
			if _, err := os.Stat(filepath.Join(env.dir, publishedFile)); err == nil {
				return nil
			}
			continue
		}
		msgs := make([]*pubsub.Message, len(batch))
		for i, b := range batch {
			msgs[i] = b.msg
		}
		applied := 0
		err = in.HandleBatch(ctx, "chaos-consumer", msgs, func(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error {
			applied++
			return apply(ctx, tx, m)
		})
		if err != nil {
			return err
		}
		// The acknowledgement, after the commit: a kill in between makes
		// the batch come again, and the inbox skips it.
		if _, err := db.Exec("INSERT INTO position VALUES (?)", batch[len(batch)-1].seq); err != nil {
			return err
		}
		if dups := len(batch) - applied; dups > 0 {
			db.Exec("INSERT INTO duplicates VALUES (?)", dups)
		}
		out.line("applied %d", applied)
	}
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
	url := startNATS(t, filepath.Join(dir, "nats"))
	stream := "CHAOS_" + strings.ToUpper(randomHex())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := createStream(ctx, url, stream, "chaos."+stream); err != nil {
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
		{"consumer", max(2, messages/50/20)},
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
	if err := os.WriteFile(filepath.Join(dir, publishedFile), nil, 0o644); err != nil {
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
	if outOfOrder > 0 {
		t.Errorf("%d messages were applied out of their key's order", outOfOrder)
	}
	if n, err := ob.Pending(context.Background()); err != nil || n != 0 {
		t.Errorf("outbox: Pending = %d, %v; want 0", n, err)
	}
	cdb.QueryRow("SELECT coalesce(sum(n), 0) FROM duplicates").Scan(&dups)
	t.Logf("%d orders; the inbox skipped %d redelivered messages", len(want), dups)
}
