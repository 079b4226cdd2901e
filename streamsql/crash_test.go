package streamsql_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/filestore"
	"github.com/fjord-data/fjord/streamsql"
	"github.com/fjord-data/fjord/streamsql/pebblestate"
)

// The crash test runs a child process (this test binary, re-executed) that
// appends orders to a filestore while a persistent table query and a
// persistent stream query run; the parent kills it with SIGKILL after a
// random number of appends, several times, then lets a last child finish
// and print the results: they must equal what the events imply, with no
// order lost or counted twice, and no output event written twice.

const (
	envCrashDir  = "FJORD_SQL_CRASH_DIR"
	envCrashMode = "FJORD_SQL_CRASH_MODE"
	crashOrders  = 400
)

func crashEvent(i int) eventstore.Event {
	return eventstore.Event{
		ID:   uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "crash-order-%d", i)),
		Type: "Placed",
		Data: fmt.Appendf(nil, `{"id":"o%d","customer":"c%d","amount":%d}`, i, i%7, i%100),
	}
}

// crashChild appends the orders (again: the IDs make repeats no-ops) and,
// in mode "final", waits for the queries and prints their results.
func crashChild(dir, mode string) {
	fail := func(what string, err error) {
		fmt.Fprintln(os.Stderr, "child:", what+":", err)
		os.Exit(3)
	}
	b, err := filestore.Open(filepath.Join(dir, "store"), nil)
	if err != nil {
		fail("open store", err)
	}
	store := eventstore.New(b, nil)
	st, err := pebblestate.Open(filepath.Join(dir, "sql"), nil)
	if err != nil {
		fail("open state", err)
	}
	e, err := streamsql.New(store, &streamsql.Options{State: st, BatchSize: 16})
	if err != nil {
		fail("new", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	for _, sql := range []string{
		`CREATE STREAM IF NOT EXISTS orders (id STRING KEY, customer STRING, amount BIGINT) WITH (SOURCE='order-')`,
		`CREATE TABLE IF NOT EXISTS totals AS SELECT customer, COUNT(*) AS n, SUM(amount) AS total FROM orders GROUP BY customer EMIT CHANGES`,
		`CREATE STREAM IF NOT EXISTS big WITH (SOURCE='big') AS SELECT id, amount FROM orders WHERE amount >= 50 EMIT CHANGES`,
	} {
		if _, err := e.Exec(ctx, sql); err != nil {
			fail("exec", err)
		}
	}
	out := bufio.NewWriter(os.Stdout)
	for i := range crashOrders {
		if _, err := store.Append(ctx, eventstore.StreamID(fmt.Sprintf("order-%d", i%50)), eventstore.Any, crashEvent(i)); err != nil {
			fail("append", err)
		}
		fmt.Fprintln(out, "appended", i)
		out.Flush()
	}
	if mode != "final" {
		select {} // wait to be killed
	}
	head, err := store.Head(ctx)
	if err != nil {
		fail("head", err)
	}
	res, _ := e.Exec(ctx, "SHOW QUERIES")
	for _, r := range res.Rows {
		if err := e.WaitFor(ctx, r[0], head); err != nil {
			fail("wait", err)
		}
	}
	for ch, err := range e.Query(ctx, "SELECT * FROM totals", nil) {
		if err != nil {
			fail("pull", err)
		}
		fmt.Fprintln(out, append([]any{"row"}, ch.Row...)...)
	}
	for ev, err := range store.ReadStream(ctx, "big", eventstore.ReadStreamOptions{}) {
		if err != nil {
			fail("read", err)
		}
		fmt.Fprintln(out, "big", string(ev.Data))
	}
	fmt.Fprintln(out, "done")
	out.Flush()
	cancel()
	<-done
	if err := e.Close(); err != nil {
		fail("close", err)
	}
	store.Close()
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 7))
	child := func(mode string) (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$")
		cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashMode+"="+mode)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, bufio.NewScanner(stdout)
	}
	for cycle := range 6 {
		cmd, sc := child("crash")
		kill := 1 + rng.IntN(crashOrders)
		for n := 0; n < kill && sc.Scan(); n++ {
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		t.Logf("cycle %d: killed after %d appends", cycle, kill)
	}
	cmd, sc := child("final")
	var rows, big []string
	finished := false
	for sc.Scan() {
		switch line := sc.Text(); {
		case strings.HasPrefix(line, "row "):
			rows = append(rows, strings.TrimPrefix(line, "row "))
		case strings.HasPrefix(line, "big "):
			big = append(big, strings.TrimPrefix(line, "big "))
		case line == "done":
			finished = true
		}
	}
	if err := cmd.Wait(); err != nil || !finished {
		t.Fatalf("final child: %v (finished %v)", err, finished)
	}
	// What the orders imply.
	n, total := map[int]int{}, map[int]int{}
	var wantBig []string
	for i := range crashOrders {
		n[i%7]++
		total[i%7] += i % 100
		if i%100 >= 50 {
			wantBig = append(wantBig, fmt.Sprintf(`{"id":"o%d","amount":%d}`, i, i%100))
		}
	}
	var wantRows []string
	for c := range 7 {
		wantRows = append(wantRows, fmt.Sprintf("c%d %d %d", c, n[c], total[c]))
	}
	sort.Strings(rows)
	if d := cmp.Diff(wantRows, rows); d != "" {
		t.Errorf("table after crashes (-want +got):\n%s", d)
	}
	sort.Strings(big)
	sort.Strings(wantBig)
	if d := cmp.Diff(wantBig, big); d != "" {
		t.Errorf("stream output after crashes (-want +got):\n%s", d)
	}
}
