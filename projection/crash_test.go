package projection_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/filestore"
	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/projection"
)

// The crash test runs a child process (this test binary, re-executed) that
// appends deposits to a filestore and projects them into SQLite (or
// PostgreSQL, when FJORD_TEST_POSTGRES is set) at the same
// time, printing each committed checkpoint; the parent kills it with
// SIGKILL at a random point, then checks that the read model equals the
// model folded directly from the events up to the stored checkpoint: no
// event lost, none applied twice. The last check runs the projection to
// the head. Set FJORD_CRASH_CYCLES for more than the default 10 cycles.

const (
	envCrashChild  = "FJORD_PROJECTION_CRASH_DIR"
	envCrashSchema = "FJORD_PROJECTION_CRASH_SCHEMA" // set: the read model is in this PostgreSQL schema
)

// openReadModel opens the crash test's read model: SQLite in dir, or the
// PostgreSQL schema when one is given.
func openReadModel(dir, schema string) (*sql.DB, error) {
	if schema != "" {
		return sqltest.OpenPostgres(os.Getenv(sqltest.EnvPostgres), schema)
	}
	return sqltest.OpenSQLite(filepath.Join(dir, "read.db"))
}

func crashChild() {
	dir := os.Getenv(envCrashChild)
	b, err := filestore.Open(filepath.Join(dir, "events"), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(3)
	}
	s := eventstore.New(b, nil)
	db, err := openReadModel(dir, os.Getenv(envCrashSchema))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open db:", err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	commits := make(chan eventstore.Position, 1024)
	p := projection.New(s, db, balances(), &projection.Options{MaxBatch: 1 + rand.IntN(200),
		Hooks: projection.Hooks{OnCommit: func(c projection.CommitInfo) { commits <- c.Position }}})
	go func() {
		for i := 0; ; i++ {
			n := 1 + rand.IntN(5)
			events := make([]eventstore.Event, n)
			for j := range events {
				events[j] = deposit(i*10 + j)
			}
			if _, err := s.Append(context.Background(), eventstore.StreamID(fmt.Sprintf("account-%d", i%17)), eventstore.Any, events...); err != nil {
				fmt.Fprintln(os.Stderr, "child: append:", err)
				os.Exit(3)
			}
		}
	}()
	go func() {
		for pos := range commits {
			fmt.Fprintf(out, "commit %d\n", pos)
			out.Flush()
		}
	}()
	if err := p.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "child: run:", err)
		os.Exit(3)
	}
}

func crashCycles(t *testing.T) int {
	if v := os.Getenv("FJORD_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FJORD_CRASH_CYCLES=%q: want a positive number", v)
		}
		return n
	}
	if testing.Short() {
		return 3
	}
	return 10
}

func TestCrashExactlyOnce(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testCrashExactlyOnce(t, "") })
	t.Run("postgres", func(t *testing.T) { testCrashExactlyOnce(t, sqltest.PostgresSchema(t)) })
}

func testCrashExactlyOnce(t *testing.T, schema string) {
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	var acked eventstore.Position
	for cycle := range crashCycles(t) {
		killAfter := rng.IntN(60)
		acked = max(acked, runCrashChild(t, dir, schema, cycle, killAfter))
		verifyCrash(t, dir, schema, cycle, acked, false)
	}
	verifyCrash(t, dir, schema, -1, acked, true)
}

// runCrashChild starts a child, kills it after killAfter commits and
// returns the highest checkpoint it reported.
func runCrashChild(t *testing.T, dir, schema string, cycle, killAfter int) eventstore.Position {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashExactlyOnce$")
	cmd.Env = append(os.Environ(), envCrashChild+"="+dir, envCrashSchema+"="+schema)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var last eventstore.Position
	sc := bufio.NewScanner(stdout)
	for n := 0; n < killAfter && sc.Scan(); n++ {
		fmt.Sscanf(sc.Text(), "commit %d", &last)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		var pos eventstore.Position
		if _, err := fmt.Sscanf(sc.Text(), "commit %d", &pos); err == nil {
			last = max(last, pos)
		}
	}
	if err := cmd.Wait(); !strings.Contains(fmt.Sprint(err), "killed") {
		t.Fatalf("cycle %d: child ended with %v before it was killed; stderr:\n%s", cycle, err, stderr.String())
	}
	return last
}

// verifyCrash reopens the store and the read model and compares the read
// model with the events up to its checkpoint; with finish, it first runs
// the projection to the head.
func verifyCrash(t *testing.T, dir, schema string, cycle int, acked eventstore.Position, finish bool) {
	t.Helper()
	b, err := filestore.Open(filepath.Join(dir, "events"), nil)
	if err != nil {
		t.Fatalf("cycle %d: reopen the store: %v", cycle, err)
	}
	s := eventstore.New(b, nil)
	defer s.Close()
	db, err := openReadModel(dir, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if finish {
		head, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := projection.New(s, db, balances(), nil)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(runCtx) }()
		err = p.WaitFor(ctx, head)
		cancel()
		<-done
		if err != nil {
			t.Fatal(err)
		}
	}
	var checkpoint eventstore.Position
	err = db.QueryRow("SELECT position FROM fjord_projection_checkpoints WHERE name = 'balances'").Scan(&checkpoint)
	if err != nil && acked > 0 {
		t.Fatalf("cycle %d: reading the checkpoint: %v", cycle, err)
	}
	if checkpoint < acked {
		t.Fatalf("cycle %d: checkpoint %d is behind the committed %d", cycle, checkpoint, acked)
	}
	want := map[string]balance{}
	for e, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{Until: checkpoint, Filter: eventstore.Filter{Category: "account"}}) {
		if err != nil {
			t.Fatal(err)
		}
		if checkpoint == 0 {
			break
		}
		var d struct{ Amount int64 }
		fmt.Sscanf(string(e.Data), `{"amount":%d}`, &d.Amount)
		b := want[string(e.Stream)]
		want[string(e.Stream)] = balance{b.Total + d.Amount, b.Events + 1}
	}
	got := map[string]balance{}
	if checkpoint > 0 {
		got = readModel(t, db)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("cycle %d: read model at checkpoint %d differs from the events (-want +got):\n%s", cycle, checkpoint, diff)
	}
	t.Logf("cycle %d: checkpoint %d, %d accounts", cycle, checkpoint, len(got))
}
