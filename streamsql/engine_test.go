package streamsql_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/streamsql"
	"github.com/fjord-data/fjord/streamsql/pebblestate"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envCrashDir); dir != "" {
		crashChild(dir, os.Getenv(envCrashMode))
		return
	}
	goleak.VerifyTestMain(m)
}

// running is an engine whose Run goroutine the test owns.
type running struct {
	*streamsql.Engine
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, store *eventstore.Store, opts *streamsql.Options) *running {
	t.Helper()
	e, err := streamsql.New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Engine: e, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	return r
}

// stop ends Run and closes the engine.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func mustExec(t *testing.T, e *streamsql.Engine, sql string) streamsql.Result {
	t.Helper()
	res, err := e.Exec(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return res
}

func appendJSON(t *testing.T, s *eventstore.Store, stream, typ, data string) eventstore.Position {
	t.Helper()
	res, err := s.Append(context.Background(), eventstore.StreamID(stream), eventstore.Any, eventstore.Event{Type: typ, Data: []byte(data)})
	if err != nil {
		t.Fatal(err)
	}
	return res.Position
}

// rows runs a pull query and renders its rows.
func rows(t *testing.T, e *streamsql.Engine, sql string) []string {
	t.Helper()
	var out []string
	for ch, err := range e.Query(context.Background(), sql, nil) {
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		out = append(out, render(ch))
	}
	return out
}

func render(ch streamsql.Change) string {
	s := ch.Op.String() + " " + strings.TrimSpace(fmt.Sprintln(ch.Row...))
	if ch.Old != nil {
		s += " was " + strings.TrimSpace(fmt.Sprintln(ch.Old...))
	}
	return s
}

const ordersDDL = `CREATE STREAM orders (id STRING KEY, customer STRING, amount DOUBLE) WITH (SOURCE='order-')`

// TestTableAndPullQueries runs with the default number of decoded groups
// and with none (every group the current batch does not touch is only
// encoded, and pull and push queries decode the table's rows).
func TestTableAndPullQueries(t *testing.T) {
	for _, decoded := range []int{0, -1} {
		t.Run(fmt.Sprintf("DecodedGroups=%d", decoded), func(t *testing.T) { testTableAndPullQueries(t, decoded) })
	}
}

func testTableAndPullQueries(t *testing.T, decoded int) {
	store := eventstore.New(memstore.New(), nil)
	var mu sync.Mutex
	var events, changes int
	e := start(t, store, &streamsql.Options{DecodedGroups: decoded, Hooks: streamsql.Hooks{OnBatch: func(b streamsql.BatchInfo) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(b.Query, "CTAS_TOTALS") {
			events, changes = events+b.Events, changes+b.Changes
		}
	}}})
	// Checked once the engine stopped (cleanups run after the deferred
	// stop), when every batch has been reported.
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		// Changes to one group within a batch make one change: 3 or 4.
		if events != 4 || changes < 3 || changes > 4 {
			t.Errorf("OnBatch saw %d events and %d changes, want 4 and 3 or 4", events, changes)
		}
	})
	defer e.stop(t)
	mustExec(t, e.Engine, ordersDDL)
	res := mustExec(t, e.Engine, `CREATE TABLE totals AS SELECT customer, COUNT(*) AS n, SUM(amount) AS total FROM orders GROUP BY customer EMIT CHANGES`)
	if res.QueryID == "" {
		t.Fatalf("no query id in %+v", res)
	}
	appendJSON(t, store, "order-1", "Placed", `{"id":"1","customer":"c1","amount":10}`)
	appendJSON(t, store, "order-2", "Placed", `{"id":"2","customer":"c2","amount":5}`)
	p := appendJSON(t, store, "order-3", "Placed", `{"id":"3","customer":"c1","amount":30}`)

	got := rows(t, e.Engine, fmt.Sprintf("SELECT * FROM totals WHERE customer = 'c1' AT POSITION %d", p))
	if d := cmp.Diff([]string{"INSERT c1 2 40"}, got); d != "" {
		t.Errorf("key lookup (-want +got):\n%s", d)
	}
	got = rows(t, e.Engine, fmt.Sprintf("SELECT customer, total * 2 AS double FROM totals WHERE total > 1 AT POSITION %d", p))
	if d := cmp.Diff([]string{"INSERT c1 80", "INSERT c2 10"}, got); d != "" {
		t.Errorf("scan (-want +got):\n%s", d)
	}

	// A push query on the table: its rows, then its changes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	next, stop := iter.Pull2(e.Query(ctx, "SELECT customer, n FROM totals WHERE customer = 'c1' EMIT CHANGES", nil))
	defer stop()
	want := []string{"INSERT c1 2", "UPDATE c1 3 was c1 2"}
	for i, w := range want {
		if i == 1 {
			appendJSON(t, store, "order-4", "Placed", `{"id":"4","customer":"c1","amount":1}`)
		}
		ch, err, ok := next()
		if !ok || err != nil {
			t.Fatalf("push: %v %v", ok, err)
		}
		if got := render(ch); got != w {
			t.Errorf("push change %d: got %q, want %q", i, got, w)
		}
	}

	show := mustExec(t, e.Engine, "SHOW QUERIES")
	if len(show.Rows) != 1 || show.Rows[0][1] != "running" {
		t.Errorf("SHOW QUERIES: %v", show.Rows)
	}
	desc := mustExec(t, e.Engine, "DESCRIBE totals")
	if d := cmp.Diff([][]string{{"customer", "STRING", "PRIMARY KEY"}, {"n", "BIGINT", ""}, {"total", "DOUBLE", ""}}, desc.Rows); d != "" {
		t.Errorf("DESCRIBE (-want +got):\n%s", d)
	}
	ex := mustExec(t, e.Engine, "EXPLAIN "+res.QueryID)
	if !strings.Contains(ex.Plan, "Aggregate keys=[customer]") {
		t.Errorf("EXPLAIN: %s", ex.Plan)
	}
}

func TestStatementErrors(t *testing.T) {
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, nil)
	defer e.stop(t)
	mustExec(t, e.Engine, ordersDDL)
	tests := []struct{ sql, want string }{
		{"SELECT nope FROM orders EMIT CHANGES", "line 1, column 8: unknown column nope"},
		{"CREATE STREAM orders (a INT) WITH (SOURCE='x-')", "streamsql: already exists: orders"},
		{"SELECT * FROM orders WHERE", "line 1, column 27: expected an expression, found end of input"},
		{"DROP TABLE nothing", "streamsql: not found: table nothing"},
		{"SELECT * FROM orders", "orders is not a materialized table"},
	}
	for _, tt := range tests {
		var err error
		if strings.HasPrefix(tt.sql, "SELECT") {
			for _, err = range e.Query(context.Background(), tt.sql, nil) {
				break
			}
		} else {
			_, err = e.Exec(context.Background(), tt.sql)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.sql, err, tt.want)
		}
	}
	var perr *streamsql.Error
	if _, err := e.Exec(context.Background(), "DROP STREAM"); !errors.As(err, &perr) || perr.Pos.Col != 12 {
		t.Errorf("DROP STREAM: got %v, want a *streamsql.Error at column 12", err)
	}
}

// TestRestart stops a persistent table query and a persistent stream query
// mid-way and resumes them: the results equal an uninterrupted run.
func TestRestart(t *testing.T) {
	const n = 60
	event := func(i int) string {
		return fmt.Sprintf(`{"id":"%d","customer":"c%d","amount":%d}`, i, i%7, i)
	}
	ddl := []string{ordersDDL,
		`CREATE TABLE totals AS SELECT customer, COUNT(*) AS n, SUM(amount) AS total, COLLECT_LIST(id) AS ids FROM orders GROUP BY customer EMIT CHANGES`,
		`CREATE STREAM big WITH (SOURCE='big') AS SELECT id, amount FROM orders WHERE amount >= 30 EMIT CHANGES`}
	result := func(t *testing.T, e *streamsql.Engine, store *eventstore.Store, at eventstore.Position) ([]string, []string) {
		tbl := rows(t, e, fmt.Sprintf("SELECT * FROM totals AT POSITION %d", at))
		var out []string
		for ev, err := range store.ReadStream(context.Background(), "big", eventstore.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(ev.Data))
		}
		return tbl, out
	}

	// Uninterrupted.
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, &streamsql.Options{BatchSize: 7})
	for _, s := range ddl {
		mustExec(t, e.Engine, s)
	}
	var last eventstore.Position
	for i := range n {
		last = appendJSON(t, store, fmt.Sprintf("order-%d", i), "Placed", event(i))
	}
	waitQueries(t, e.Engine, last)
	wantTable, wantStream := result(t, e.Engine, store, last)
	e.stop(t)

	// Interrupted twice, with the definitions and state in a directory.
	dir := t.TempDir()
	store = eventstore.New(memstore.New(), nil)
	// Every group not touched by the current batch is only encoded.
	e = start(t, store, &streamsql.Options{State: openState(t, dir), BatchSize: 7, DecodedGroups: -1})
	for _, s := range ddl {
		mustExec(t, e.Engine, s)
	}
	for i := range n {
		last = appendJSON(t, store, fmt.Sprintf("order-%d", i), "Placed", event(i))
		if i == n/3 || i == 2*n/3 {
			waitQueries(t, e.Engine, last)
			e.stop(t)
			e = start(t, store, &streamsql.Options{State: openState(t, dir), BatchSize: 5, DecodedGroups: -1})
		}
	}
	waitQueries(t, e.Engine, last)
	gotTable, gotStream := result(t, e.Engine, store, last)
	e.stop(t)
	if d := cmp.Diff(wantTable, gotTable); d != "" {
		t.Errorf("table after restarts (-want +got):\n%s", d)
	}
	if d := cmp.Diff(wantStream, gotStream); d != "" {
		t.Errorf("stream after restarts (-want +got):\n%s", d)
	}
	if len(wantStream) != 30 {
		t.Errorf("the stream query wrote %d events, want 30", len(wantStream))
	}
}

func openState(t *testing.T, dir string) *pebblestate.Store {
	t.Helper()
	st, err := pebblestate.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitQueries waits until every persistent query has considered the
// events up to pos.
func waitQueries(t *testing.T, e *streamsql.Engine, pos eventstore.Position) {
	t.Helper()
	for _, r := range mustExec(t, e, "SHOW QUERIES").Rows {
		if err := e.WaitFor(context.Background(), r[0], pos); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTableOverTableSurvivesRestart: a table made from a table source
// without aggregation is rebuilt from the saved source rows.
func TestTableOverTableSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, &streamsql.Options{State: openState(t, dir)})
	mustExec(t, e.Engine, `CREATE TABLE accounts (id STRING PRIMARY KEY, balance BIGINT) WITH (SOURCE='account-')`)
	res := mustExec(t, e.Engine, `CREATE TABLE rich AS SELECT id, balance FROM accounts WHERE balance > 100 EMIT CHANGES`)
	appendJSON(t, store, "account-1", "Opened", `{"id":"a","balance":500}`)
	appendJSON(t, store, "account-2", "Opened", `{"id":"b","balance":50}`)
	p := appendJSON(t, store, "account-3", "Opened", `{"id":"c","balance":200}`)
	if err := e.WaitFor(context.Background(), res.QueryID, p); err != nil {
		t.Fatal(err)
	}
	e.stop(t)
	e = start(t, store, &streamsql.Options{State: openState(t, dir)})
	defer e.stop(t)
	p = appendJSON(t, store, "account-3", "Changed", `{"id":"c","balance":20}`)
	got := rows(t, e.Engine, fmt.Sprintf("SELECT * FROM rich AT POSITION %d", p))
	if d := cmp.Diff([]string{"INSERT a 500"}, got); d != "" {
		t.Errorf("rows after the restart (-want +got):\n%s", d)
	}
	got = rows(t, e.Engine, "SELECT balance FROM rich WHERE id = 'a'")
	if d := cmp.Diff([]string{"INSERT 500"}, got); d != "" {
		t.Errorf("key lookup (-want +got):\n%s", d)
	}
}

// TestWindowedTablePull: a windowed table answers pull queries by key,
// one row per window, with the window bounds.
func TestWindowedTablePull(t *testing.T) {
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, nil)
	defer e.stop(t)
	mustExec(t, e.Engine, `CREATE STREAM clicks (page STRING, at BIGINT) WITH (SOURCE='click-', TIMESTAMP='at')`)
	mustExec(t, e.Engine, `CREATE TABLE per_minute AS SELECT page, COUNT(*) AS n FROM clicks
		WINDOW TUMBLING (SIZE 1 MINUTE, RETENTION 1 DAY) GROUP BY page EMIT CHANGES`)
	for i, at := range []int{1000, 2000, 61000, 3000} {
		page := "home"
		if i == 3 {
			page = "about"
		}
		appendJSON(t, store, "click-1", "Clicked", fmt.Sprintf(`{"page":%q,"at":%d}`, page, at))
	}
	p, _ := store.Head(context.Background())
	got := rows(t, e.Engine, fmt.Sprintf("SELECT page, n, WINDOWSTART, WINDOWEND FROM per_minute WHERE page = 'home' AT POSITION %d", p))
	want := []string{
		"INSERT home 2 1970-01-01 00:00:00 +0000 UTC 1970-01-01 00:01:00 +0000 UTC",
		"INSERT home 1 1970-01-01 00:01:00 +0000 UTC 1970-01-01 00:02:00 +0000 UTC",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("windowed lookup (-want +got):\n%s", d)
	}
	// Window bounds and key ranges filter the table's rows.
	got = rows(t, e.Engine, "SELECT page, n FROM per_minute WHERE WINDOWSTART >= '1970-01-01T00:01:00Z' AND page BETWEEN 'a' AND 'i'")
	if d := cmp.Diff([]string{"INSERT home 1"}, got); d != "" {
		t.Errorf("window and key range (-want +got):\n%s", d)
	}
	// The event at 3000 came after the first window closed (no grace):
	// it is late and counted.
	if got := rows(t, e.Engine, "SELECT * FROM per_minute WHERE page = 'about'"); len(got) != 0 {
		t.Errorf("late event made rows: %v", got)
	}
}

// crashingState fails the first commit of a stream query at or after
// position at: the query's output batch has been appended to the store,
// but its position is not committed, as after a crash between the two.
type crashingState struct {
	streamsql.StateStore
	at      uint64
	crashed bool
}

func (c *crashingState) Commit(id string, pos uint64, save func(put func(string, []byte))) error {
	if !c.crashed && pos >= c.at && strings.HasPrefix(id, "CSAS") {
		c.crashed = true
		return errors.New("injected crash")
	}
	return c.StateStore.Commit(id, pos, save)
}

// TestStreamQueryCrashBetweenAppendAndCommit: after the restart, the query
// re-forms the batch it was appending, the store recognises the events as
// duplicates, and the output holds every row once.
func TestStreamQueryCrashBetweenAppendAndCommit(t *testing.T) {
	dir := t.TempDir()
	store := eventstore.New(memstore.New(), nil)
	crash := &crashingState{StateStore: openState(t, dir), at: 12}
	e := start(t, store, &streamsql.Options{State: crash, BatchSize: 4})
	mustExec(t, e.Engine, ordersDDL)
	res := mustExec(t, e.Engine, `CREATE STREAM by_customer WITH (SOURCE='bycust-') AS SELECT id, amount FROM orders PARTITION BY customer EMIT CHANGES`)
	var last eventstore.Position
	for i := range 20 {
		last = appendJSON(t, store, fmt.Sprintf("order-%d", i), "Placed", fmt.Sprintf(`{"id":"%d","customer":"c%d","amount":%d}`, i, i%3, i))
	}
	err := e.WaitFor(context.Background(), res.QueryID, last)
	if err == nil || !strings.Contains(err.Error(), "injected crash") {
		t.Fatalf("WaitFor: %v, want the injected crash", err)
	}
	e.stop(t)

	e = start(t, store, &streamsql.Options{State: openState(t, dir), BatchSize: 3})
	defer e.stop(t)
	if err := e.WaitFor(context.Background(), res.QueryID, last); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for c := range 3 {
		for ev, err := range store.ReadStream(context.Background(), eventstore.StreamID(fmt.Sprintf("bycust-c%d", c)), eventstore.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			ids[string(ev.Data)]++
		}
	}
	if len(ids) != 20 {
		t.Errorf("%d distinct output events, want 20", len(ids))
	}
	for data, n := range ids {
		if n != 1 {
			t.Errorf("%s written %d times", data, n)
		}
	}
}

// TestJoinTable: a persistent aggregation over a stream–table join, read
// by pull queries.
func TestJoinTable(t *testing.T) {
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, nil)
	defer e.stop(t)
	mustExec(t, e.Engine, `CREATE STREAM orders (id STRING, customer STRING, amount DOUBLE) WITH (SOURCE='order-')`)
	mustExec(t, e.Engine, `CREATE TABLE customers (id STRING PRIMARY KEY, tier STRING) WITH (SOURCE='customer-')`)
	mustExec(t, e.Engine, `CREATE TABLE by_tier AS SELECT c.tier AS tier, SUM(o.amount) AS total
		FROM orders o JOIN customers c ON o.customer = c.id GROUP BY c.tier EMIT CHANGES`)
	appendJSON(t, store, "customer-1", "Registered", `{"id":"c1","tier":"gold"}`)
	appendJSON(t, store, "order-1", "Placed", `{"id":"o1","customer":"c1","amount":10}`)
	appendJSON(t, store, "customer-1", "Downgraded", `{"id":"c1","tier":"basic"}`)
	p := appendJSON(t, store, "order-2", "Placed", `{"id":"o2","customer":"c1","amount":5}`)
	got := rows(t, e.Engine, fmt.Sprintf("SELECT * FROM by_tier AT POSITION %d", p))
	slices.Sort(got)
	if d := cmp.Diff([]string{"INSERT basic 5", "INSERT gold 10"}, got); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}
}

// TestDecimal: DECIMAL columns keep exact values through a persistent
// aggregation, and come out as decimal text.
func TestDecimal(t *testing.T) {
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, nil)
	defer e.stop(t)
	mustExec(t, e.Engine, `CREATE STREAM pay (k STRING, amount DECIMAL(10, 2)) WITH (SOURCE='pay-')`)
	mustExec(t, e.Engine, `CREATE TABLE totals AS SELECT k, SUM(amount) AS total, MAX(amount) * 2 AS twice FROM pay GROUP BY k EMIT CHANGES`)
	for range 10 {
		appendJSON(t, store, "pay-1", "Paid", `{"k":"a","amount":0.1}`)
	}
	p := appendJSON(t, store, "pay-1", "Paid", `{"k":"a","amount":"0.20"}`)
	got := rows(t, e.Engine, fmt.Sprintf("SELECT * FROM totals WHERE total = CAST('1.2' AS DECIMAL(3, 1)) AT POSITION %d", p))
	if d := cmp.Diff([]string{"INSERT a 1.20 0.40"}, got); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}
}

// TestWaitForThenPull: once WaitFor returns for a position, a pull query
// reads the table with everything up to it applied (read your writes). Each
// round creates a table over events already stored (many keys per batch,
// so that updating the table is slow enough to lose a race with WaitFor if
// the position moved first) and reads the last key at once.
func TestWaitForThenPull(t *testing.T) {
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, &streamsql.Options{State: openState(t, t.TempDir())}) // the engine closes it
	defer e.stop(t)
	ctx := t.Context()
	const keys = 500
	events := make([]eventstore.Event, keys)
	for i := range events {
		events[i] = eventstore.Event{Type: "Clicked", Data: fmt.Appendf(nil, `{"k":"k%d","v":1}`, i)}
	}
	ar, err := store.Append(ctx, "click-1", eventstore.NoStream, events...)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, e.Engine, `CREATE STREAM clicks (k STRING, v BIGINT) WITH (SOURCE='click-')`)
	for round := range 30 {
		res := mustExec(t, e.Engine, fmt.Sprintf(`CREATE TABLE totals%d AS SELECT k, COUNT(*) AS n FROM clicks GROUP BY k EMIT CHANGES`, round))
		if err := e.WaitFor(ctx, res.QueryID, ar.Position); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, err := range e.Query(ctx, fmt.Sprintf(`SELECT * FROM totals%d WHERE k = 'k%d'`, round, keys-1), nil) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 1 {
			t.Fatalf("round %d, after WaitFor(%d): the last key has %d rows, want 1", round, ar.Position, n)
		}
	}
}
