package streamsql_test

import (
	"context"
	"fmt"
	"iter"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/streamsql"
)

// TestPullAtPositionOfOtherEvents: AT POSITION of an event the table's
// source does not read (another category, another event type) answers
// once the query has passed it, without waiting for more input.
func TestPullAtPositionOfOtherEvents(t *testing.T) {
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, nil)
	defer e.stop(t)
	mustExec(t, e.Engine, `CREATE STREAM orders (customer STRING, amount BIGINT) WITH (SOURCE='order-', EVENT_TYPES='Placed')`)
	mustExec(t, e.Engine, `CREATE TABLE totals AS SELECT customer, SUM(amount) AS total FROM orders GROUP BY customer EMIT CHANGES`)
	appendJSON(t, store, "order-1", "Placed", `{"customer":"c1","amount":5}`)
	for _, c := range []struct{ stream, typ string }{{"other-1", "Placed"}, {"order-2", "Cancelled"}} {
		p := appendJSON(t, store, c.stream, c.typ, `{"customer":"c1","amount":7}`)
		// A guard against a hang, not a timing assertion.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var got []string
		for ch, err := range e.Query(ctx, fmt.Sprintf("SELECT * FROM totals AT POSITION %d", p), nil) {
			if err != nil {
				t.Fatalf("%s at %d: %v", c.stream, p, err)
			}
			got = append(got, render(ch))
		}
		cancel()
		if d := cmp.Diff([]string{"INSERT c1 5"}, got); d != "" {
			t.Errorf("%s: rows (-want +got):\n%s", c.stream, d)
		}
	}
}

// TestWindowedTableRetention: windows past their RETENTION leave the
// materialized table (pull queries no longer see them, as after a
// restart, which loads only the retained windows).
func TestWindowedTableRetention(t *testing.T) {
	dir := t.TempDir()
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, &streamsql.Options{State: openState(t, dir)})
	mustExec(t, e.Engine, `CREATE STREAM clicks (page STRING, at BIGINT) WITH (SOURCE='click-', TIMESTAMP='at')`)
	res := mustExec(t, e.Engine, `CREATE TABLE per_minute AS SELECT page, COUNT(*) AS n FROM clicks
		WINDOW TUMBLING (SIZE 1 MINUTE, RETENTION 2 MINUTES) GROUP BY page EMIT CHANGES`)
	var p eventstore.Position
	for _, at := range []int{1000, 61000, 185000} {
		p = appendJSON(t, store, "click-1", "Clicked", fmt.Sprintf(`{"page":"home","at":%d}`, at))
	}
	if err := e.WaitFor(context.Background(), res.QueryID, p); err != nil {
		t.Fatal(err)
	}
	// Stream time 185 s: the window [0, 60 s) ended more than 2 minutes ago.
	want := []string{"INSERT 60000 1", "INSERT 180000 1"}
	const pull = "SELECT UNIX_TIMESTAMP(WINDOWSTART) AS ws, n FROM per_minute WHERE page = 'home'"
	if d := cmp.Diff(want, rows(t, e.Engine, pull)); d != "" {
		t.Errorf("before a restart (-want +got):\n%s", d)
	}
	e.stop(t)
	e = start(t, store, &streamsql.Options{State: openState(t, dir)})
	defer e.stop(t)
	if d := cmp.Diff(want, rows(t, e.Engine, pull)); d != "" {
		t.Errorf("after a restart (-want +got):\n%s", d)
	}
}

// TestSharedPushQueryLimit: each subscriber of a shared push query gets
// up to its LIMIT of changes, however many the query emitted before it
// joined.
func TestSharedPushQueryLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := eventstore.New(memstore.New(), nil)
		e := start(t, store, nil)
		defer e.stop(t)
		mustExec(t, e.Engine, ordersDDL)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const q = `SELECT id FROM orders EMIT CHANGES LIMIT 2`
		a, stopA := iter.Pull2(e.Query(ctx, q, nil))
		defer stopA()
		first := later(a)
		synctest.Wait()
		appendJSON(t, store, "order-1", "Placed", `{"id":"o1"}`)
		if got := <-first; got != "INSERT o1" {
			t.Errorf("first subscriber: %s", got)
		}
		b, stopB := iter.Pull2(e.Query(ctx, q, nil))
		defer stopB()
		late := later(b)
		synctest.Wait()
		appendJSON(t, store, "order-2", "Placed", `{"id":"o2"}`)
		appendJSON(t, store, "order-3", "Placed", `{"id":"o3"}`)
		want := map[string][]string{"first": {"INSERT o2", "end"}, "late": {"INSERT o2", "INSERT o3", "end"}}
		got := map[string][]string{"first": {render(next(t, a))}, "late": {<-late}}
		got["late"] = append(got["late"], render(next(t, b)))
		for name, pull := range map[string]func() (streamsql.Change, error, bool){"first": a, "late": b} {
			if ch, err, ok := pull(); ok || err != nil {
				got[name] = append(got[name], fmt.Sprintf("%v %v", render(ch), err))
			} else {
				got[name] = append(got[name], "end")
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	})
}

// TestPullKeyOfOtherScale: a pull query's key constant of another DECIMAL
// scale than the table's key finds the row.
func TestPullKeyOfOtherScale(t *testing.T) {
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, nil)
	defer e.stop(t)
	mustExec(t, e.Engine, `CREATE STREAM prices (k DECIMAL(4, 2), n BIGINT) WITH (SOURCE='price-')`)
	mustExec(t, e.Engine, `CREATE TABLE by_price AS SELECT k, SUM(n) AS total FROM prices GROUP BY k EMIT CHANGES`)
	p := appendJSON(t, store, "price-1", "Set", `{"k":1.5,"n":2}`)
	for _, where := range []string{"k = 1.50", "k = 1.5", "k = 1.500", "1.5 = k", "k = CAST(1.5 AS DECIMAL(2, 1))"} {
		got := rows(t, e.Engine, fmt.Sprintf("SELECT total FROM by_price WHERE %s AT POSITION %d", where, p))
		if d := cmp.Diff([]string{"INSERT 2"}, got); d != "" {
			t.Errorf("WHERE %s (-want +got):\n%s", where, d)
		}
	}
}

// TestPullOnCompositeKey: a table grouped by two columns answers a pull
// query that fixes one or both of them.
func TestPullOnCompositeKey(t *testing.T) {
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, nil)
	defer e.stop(t)
	mustExec(t, e.Engine, `CREATE STREAM sales (region STRING, product STRING, n BIGINT) WITH (SOURCE='sale-')`)
	mustExec(t, e.Engine, `CREATE TABLE per_product AS SELECT region, product, SUM(n) AS total FROM sales GROUP BY region, product EMIT CHANGES`)
	appendJSON(t, store, "sale-1", "Sold", `{"region":"eu","product":"a","n":1}`)
	appendJSON(t, store, "sale-2", "Sold", `{"region":"eu","product":"b","n":2}`)
	p := appendJSON(t, store, "sale-3", "Sold", `{"region":"us","product":"a","n":4}`)
	for where, want := range map[string][]string{
		"region = 'eu'":                   {"INSERT eu a 1", "INSERT eu b 2"},
		"product = 'a'":                   {"INSERT eu a 1", "INSERT us a 4"},
		"region = 'eu' AND product = 'b'": {"INSERT eu b 2"},
	} {
		got := rows(t, e.Engine, fmt.Sprintf("SELECT * FROM per_product WHERE %s AT POSITION %d", where, p))
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("WHERE %s (-want +got):\n%s", where, d)
		}
	}
}

// TestStreamQueryOutputWithinStoreLimits: a stream query whose batch
// produces more output than one append may carry appends it in parts, and
// a row the store cannot take (its stream name has a control character) is
// a counted runtime error, not a failed query.
func TestStreamQueryOutputWithinStoreLimits(t *testing.T) {
	store := eventstore.New(memstore.New(), &eventstore.Options{Limits: eventstore.Limits{MaxAppendEvents: 2}})
	e := start(t, store, &streamsql.Options{BatchSize: 1})
	defer e.stop(t)
	mustExec(t, e.Engine, `CREATE STREAM orders (id STRING, customer STRING) WITH (SOURCE='order-')`)
	mustExec(t, e.Engine, `CREATE STREAM payments (order_id STRING, paid INT) WITH (SOURCE='payment-')`)
	res := mustExec(t, e.Engine, `CREATE STREAM paid WITH (SOURCE='paid-') AS SELECT o.id AS id, o.customer AS customer, p.paid AS paid
		FROM orders o JOIN payments p WITHIN 1 HOUR ON o.id = p.order_id PARTITION BY o.customer EMIT CHANGES`)
	for i := range 3 {
		appendJSON(t, store, "payment-1", "Paid", fmt.Sprintf(`{"order_id":"o1","paid":%d}`, i))
	}
	appendJSON(t, store, "order-1", "Placed", `{"id":"o1","customer":"c1"}`)
	appendJSON(t, store, "payment-2", "Paid", `{"order_id":"o2","paid":9}`)
	last := appendJSON(t, store, "order-2", "Placed", `{"id":"o2","customer":"bad\u0007name"}`)
	if err := e.WaitFor(context.Background(), res.QueryID, last); err != nil {
		t.Fatal(err)
	}
	var got []string
	for ev, err := range store.ReadStream(context.Background(), "paid-c1", eventstore.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(ev.Data))
	}
	want := []string{`{"id":"o1","customer":"c1","paid":0}`, `{"id":"o1","customer":"c1","paid":1}`, `{"id":"o1","customer":"c1","paid":2}`}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("output (-want +got):\n%s", d)
	}
	if _, runtime, _, _, err := e.Errors(res.QueryID); runtime != 1 || err != nil {
		t.Errorf("runtime errors: %d, %v; want 1", runtime, err)
	}
}
