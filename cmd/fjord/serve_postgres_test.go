package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/grpcstore"
)

// testPostgres returns the test database's DSN, or skips the test.
func testPostgres(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("FJORD_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("FJORD_TEST_POSTGRES is not set: skipping PostgreSQL tests")
	}
	return dsn
}

// freshSchema returns a new schema name on dsn's database and drops the
// schema at cleanup.
func freshSchema(t *testing.T, dsn string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "fjord_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer pool.Close()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

// buildFjord builds the fjord binary into a temporary directory.
func buildFjord(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fjord")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serveLog keeps a server's standard error and reports the address from
// its "serving the event store" line.
type serveLog struct {
	mu    sync.Mutex
	all   bytes.Buffer
	line  []byte
	addrs chan string // buffered; receives the address once
	sent  bool
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	for _, c := range p {
		if c != '\n' {
			l.line = append(l.line, c)
			continue
		}
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(l.line, &rec) == nil && rec.Msg == "serving the event store" && !l.sent {
			l.sent = true
			l.addrs <- rec.Addr
		}
		l.line = l.line[:0]
	}
	return len(p), nil
}

func (l *serveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// startServe starts `fjord serve --postgres dsn --schema schema` on a free
// loopback port, waits until /readyz answers 200, and returns its base URL.
// The process is killed at cleanup.
func startServeProcess(t *testing.T, bin, dsn, schema string) string {
	t.Helper()
	log := &serveLog{addrs: make(chan string, 1)}
	cmd := exec.Command(bin, "serve", "--postgres", dsn, "--schema", schema, "--listen", "127.0.0.1:0", "--log-format", "json",
		"--data", t.TempDir(), "--nats", "off") // each node its own data directory, as on separate machines
	cmd.Env = append(os.Environ(), "FJORD_POSTGRES=", "FJORD_SCHEMA=", "FJORD_LISTEN=")
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("fjord serve (%s) logged:\n%s", schema, log.String())
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var addr string
	select {
	case addr = <-log.addrs:
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("fjord serve exited: %v\n%s", err, log.String())
	case <-ctx.Done():
		t.Fatalf("fjord serve did not listen within 30s:\n%s", log.String())
	}
	url := "http://" + addr
	if err := waitReady(ctx, url); err != nil {
		t.Fatalf("%s: %v\n%s", url, err, log.String())
	}
	return url
}

// waitReady polls url's /readyz until it answers 200 or ctx ends.
func waitReady(ctx context.Context, url string) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %d attempts: %w", attempt, err)
		case <-tick.C:
		}
	}
}

// TestServePostgresTwoNodes runs two `fjord serve` processes on one
// PostgreSQL schema, appends through both at once, and follows $all on
// each: both subscribers must see every acknowledged event exactly once,
// at positions 1, 2, 3… in the same order.
func TestServePostgresTwoNodes(t *testing.T) {
	dsn := testPostgres(t)
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // last: after the servers are killed
	bin := buildFjord(t)
	schema := freshSchema(t, dsn)
	urls := []string{startServeProcess(t, bin, dsn, schema), startServeProcess(t, bin, dsn, schema)}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	clients := make([]*eventstore.Store, len(urls))
	for i, url := range urls {
		b, err := grpcstore.New(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = eventstore.New(b, nil)
		defer clients[i].Close()
	}

	subs := make([]*nodeSubscriber, len(clients))
	var subsWG sync.WaitGroup
	for i, c := range clients {
		subs[i] = &nodeSubscriber{ready: make(chan struct{})}
		subsWG.Go(func() { subs[i].run(ctx, c) })
		select {
		case <-subs[i].ready:
		case <-ctx.Done():
			t.Fatal("subscriber did not catch up")
		}
	}

	const writersPerNode, appendsPerWriter = 4, 40
	var mu sync.Mutex
	acked := map[uuid.UUID]bool{}
	var writers sync.WaitGroup
	for w := range len(clients) * writersPerNode {
		c := clients[w%len(clients)]
		writers.Go(func() {
			var v eventstore.Version
			own := eventstore.StreamID(fmt.Sprintf("node%d-writer%d", w%len(clients), w))
			for a := range appendsPerWriter {
				evs := make([]eventstore.Event, 1+(w+a)%5)
				for j := range evs {
					evs[j] = eventstore.Event{ID: uuid.New(), Type: "Appended", Data: []byte(`{}`)}
				}
				var err error
				if a%4 == 3 {
					_, err = c.Append(ctx, eventstore.StreamID(fmt.Sprintf("shared-%d", a%3)), eventstore.Any, evs...)
				} else {
					_, err = c.Append(ctx, own, eventstore.Exact(v), evs...)
					v += eventstore.Version(len(evs))
				}
				if err != nil {
					t.Errorf("writer %d, append %d: %v", w, a, err)
					cancel()
					return
				}
				mu.Lock()
				for _, e := range evs {
					acked[e.ID] = true
				}
				mu.Unlock()
			}
		})
	}
	writers.Wait()
	done := eventstore.Event{ID: uuid.New(), Type: "Done"}
	if _, err := clients[1].Append(ctx, "done-1", eventstore.NoStream, done); err != nil {
		t.Fatalf("appending the last event: %v", err)
	}
	acked[done.ID] = true
	subsWG.Wait()
	if t.Failed() {
		return
	}

	for i, s := range subs {
		if s.err != nil {
			t.Fatalf("subscriber on node %d: %v", i, s.err)
		}
		seen := map[uuid.UUID]bool{}
		for _, e := range s.got {
			if seen[e.ID] {
				t.Errorf("node %d: event %s delivered twice", i, e.ID)
			}
			if !acked[e.ID] {
				t.Errorf("node %d: event %s at %d was never acknowledged", i, e.ID, e.Position)
			}
			seen[e.ID] = true
		}
		if len(seen) != len(acked) {
			t.Errorf("node %d: %d events delivered, %d acknowledged", i, len(seen), len(acked))
		}
	}
	for j := range min(len(subs[0].got), len(subs[1].got)) {
		if a, b := subs[0].got[j], subs[1].got[j]; a.ID != b.ID || a.Position != b.Position {
			t.Fatalf("delivery %d: node 0 got %s at %d, node 1 got %s at %d", j, a.ID, a.Position, b.ID, b.Position)
		}
	}
	t.Logf("%d events through 2 nodes, delivered in the same order on both", len(acked))
}

// nodeSubscriber follows $all from the start until the Done event,
// checking that positions are 1, 2, 3….
type nodeSubscriber struct {
	ready chan struct{} // closed once live, or on failure
	once  sync.Once
	got   []eventstore.RecordedEvent
	err   error
}

func (s *nodeSubscriber) run(ctx context.Context, st *eventstore.Store) {
	markReady := func() { s.once.Do(func() { close(s.ready) }) }
	defer markReady()
	for d, err := range st.Subscribe(ctx, eventstore.SubscribeOptions{}) {
		switch {
		case err != nil:
			s.err = err
			return
		case d.Kind == eventstore.DeliveredCaughtUp:
			markReady()
		case d.Kind == eventstore.DeliveredEvent:
			if want := eventstore.Position(len(s.got) + 1); d.Position != want {
				s.err = fmt.Errorf("delivered position %d, want %d (a hole or a repeat)", d.Position, want)
				return
			}
			s.got = append(s.got, d.Event)
			if d.Event.Type == "Done" {
				return
			}
		}
	}
	if s.err == nil {
		s.err = errors.New("subscription ended before the Done event")
	}
}

// TestServePostgresUnreachable: serve --postgres names the schema and says
// the database is unreachable, without listening.
func TestServePostgresUnreachable(t *testing.T) {
	h := newHarness(t)
	_, errOut, err := h.run("", "serve", "--listen", "127.0.0.1:0",
		"--postgres", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5", "--schema", "orders")
	if err == nil || !strings.Contains(errOut, `PostgreSQL schema "orders"`) || !strings.Contains(errOut, "unreachable") {
		t.Errorf("serve on an unreachable database: err %v, stderr %q", err, errOut)
	}
}
