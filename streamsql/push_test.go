package streamsql_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/streamsql"
)

// next pulls one change, failing the test on an error or the end.
func next(t *testing.T, pull func() (streamsql.Change, error, bool)) streamsql.Change {
	t.Helper()
	ch, err, ok := pull()
	if !ok || err != nil {
		t.Fatalf("push query ended: ok=%v err=%v", ok, err)
	}
	return ch
}

// later pulls one change in the background (which starts a lazy push
// query) and delivers it rendered, or the error.
func later(pull func() (streamsql.Change, error, bool)) <-chan string {
	c := make(chan string, 1)
	go func() {
		ch, err, ok := pull()
		switch {
		case err != nil:
			c <- "error: " + err.Error()
		case !ok:
			c <- "end"
		default:
			c <- render(ch)
		}
	}()
	return c
}

// TestIdleWatermarkClosesWindows: with no new events, the idle timeout
// moves the watermark to the current time, and EMIT FINAL emits the
// window's row once its end has passed.
func TestIdleWatermarkClosesWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := eventstore.New(memstore.New(), nil)
		e := start(t, store, &streamsql.Options{IdleTimeout: time.Second})
		defer e.stop(t)
		mustExec(t, e.Engine, `CREATE STREAM clicks (page STRING) WITH (SOURCE='click-')`)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pull, stop := iter.Pull2(e.Query(ctx, `SELECT page, COUNT(*) AS n FROM clicks
			WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY page EMIT FINAL`, &streamsql.QueryOptions{FromStart: true}))
		defer stop()
		t0 := time.Now()
		appendJSON(t, store, "click-1", "Clicked", `{"page":"home"}`)
		appendJSON(t, store, "click-2", "Clicked", `{"page":"home"}`)
		appendJSON(t, store, "click-3", "Clicked", `{"page":"about"}`)
		got := []string{render(next(t, pull)), render(next(t, pull))}
		slices.Sort(got)
		if d := cmp.Diff([]string{"INSERT about 1", "INSERT home 2"}, got); d != "" {
			t.Errorf("final rows (-want +got):\n%s", d)
		}
		// The window ends at the next minute; the row came once the idle
		// watermark passed it, within one idle timeout.
		end := t0.Truncate(time.Minute).Add(time.Minute)
		if now := time.Now(); now.Before(end) || now.After(end.Add(time.Second)) {
			t.Errorf("rows emitted at %v, want within 1s after the window end %v", now, end)
		}
	})
}

// TestSharedPushQuery: identical push queries share one running query and
// see the same changes.
func TestSharedPushQuery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := eventstore.New(memstore.New(), nil)
		e := start(t, store, nil)
		defer e.stop(t)
		mustExec(t, e.Engine, ordersDDL)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const q = `SELECT customer, COUNT(*) AS n FROM orders GROUP BY customer EMIT CHANGES`
		a, stopA := iter.Pull2(e.Query(ctx, q, nil))
		defer stopA()
		// A push query starts at the head of the store when it is first
		// pulled: pull before appending.
		first := later(a)
		synctest.Wait()
		appendJSON(t, store, "order-1", "Placed", `{"customer":"c1","amount":1}`)
		if got := <-first; got != "INSERT c1 1" {
			t.Errorf("first subscriber: %s", got)
		}
		// A late subscriber gets the current rows, then the changes.
		b, stopB := iter.Pull2(e.Query(ctx, q, nil))
		defer stopB()
		if got := render(next(t, b)); got != "INSERT c1 1" {
			t.Errorf("late subscriber's snapshot: %s", got)
		}
		appendJSON(t, store, "order-2", "Placed", `{"customer":"c1","amount":1}`)
		for name, pull := range map[string]func() (streamsql.Change, error, bool){"first": a, "late": b} {
			if got := render(next(t, pull)); got != "UPDATE c1 2 was c1 1" {
				t.Errorf("%s subscriber: %s", name, got)
			}
		}
		if got := e.RunningPushQueries(); got != 1 {
			t.Errorf("running push queries: %d, want 1", got)
		}
		show := mustExec(t, e.Engine, "SHOW QUERIES")
		if len(show.Rows) != 1 || show.Rows[0][0] != "PUSH_1" || show.Rows[0][1] != "push (2 subscribers)" {
			t.Errorf("SHOW QUERIES: %v", show.Rows)
		}
		appendJSON(t, store, "order-3", "Placed", `{"customer":"c1","amount":"x"}`)
		for _, pull := range []func() (streamsql.Change, error, bool){a, b} {
			next(t, pull)
		}
		if dec, _, _, _, err := e.Errors("PUSH_1"); dec != 1 || err != nil {
			t.Errorf("push query decode errors: %d, %v; want 1", dec, err)
		}
		stopA()
		stopB()
		synctest.Wait()
		if got := e.RunningPushQueries(); got != 0 {
			t.Errorf("running push queries after the subscribers left: %d, want 0", got)
		}
	})
}

// TestSlowSubscriber: a subscriber whose buffer fills is disconnected with
// ErrSlowSubscriber; the others go on.
func TestSlowSubscriber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := eventstore.New(memstore.New(), nil)
		e := start(t, store, &streamsql.Options{SubscriberBuffer: 2})
		defer e.stop(t)
		mustExec(t, e.Engine, ordersDDL)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const q = `SELECT id FROM orders EMIT CHANGES`
		slow, stopSlow := iter.Pull2(e.Query(ctx, q, nil))
		defer stopSlow()
		fast, stopFast := iter.Pull2(e.Query(ctx, q, nil))
		defer stopFast()
		slowFirst, fastFirst := later(slow), later(fast)
		synctest.Wait() // both subscribed and the query running
		for i := range 5 {
			appendJSON(t, store, "order-1", "Placed", `{"id":"`+string(rune('a'+i))+`"}`)
			synctest.Wait() // one batch per event
			got := ""
			if i == 0 {
				got = <-fastFirst
			} else {
				got = render(next(t, fast))
			}
			if got != "INSERT "+string(rune('a'+i)) {
				t.Errorf("fast subscriber: %s", got)
			}
		}
		<-slowFirst
		var err error
		n := 1
		for {
			_, e, ok := slow()
			if !ok || e != nil {
				err = e
				break
			}
			n++
		}
		// One change taken, two buffered, then the buffer overflowed.
		if !errors.Is(err, streamsql.ErrSlowSubscriber) || n != 3 {
			t.Errorf("slow subscriber: %d changes, then %v; want 3 and ErrSlowSubscriber", n, err)
		}
	})
}

// TestDecodeErrorsAreCounted: data that does not fit is NULL, counted, and
// never stops the query.
func TestDecodeErrorsAreCounted(t *testing.T) {
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, nil)
	defer e.stop(t)
	mustExec(t, e.Engine, ordersDDL)
	res := mustExec(t, e.Engine, `CREATE TABLE totals AS SELECT customer, COUNT(*) AS n, SUM(amount) AS total, SUM(amount / 0) AS bad FROM orders GROUP BY customer EMIT CHANGES`)
	appendJSON(t, store, "order-1", "Placed", `{"customer":"c1","amount":"ten"}`)
	appendJSON(t, store, "order-2", "Placed", `garbage`)
	p := appendJSON(t, store, "order-3", "Placed", `{"customer":"c1","amount":2}`)
	if err := e.WaitFor(context.Background(), res.QueryID, p); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"INSERT <nil> 1 <nil> <nil>", "INSERT c1 2 2 <nil>"}, rows(t, e.Engine, "SELECT * FROM totals")); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}
	dec, run, late, recent, err := e.Errors(res.QueryID)
	if err != nil || dec != 2 || run != 1 || late != 0 || len(recent) != 3 {
		t.Errorf("Errors: decode=%d runtime=%d late=%d recent=%q err=%v; want 2, 1 (NULL / 0 is NULL without an error), 0", dec, run, late, recent, err)
	}
}

// TestIdleWatermarkEventTime: with event time from the data, an idle input
// moves stream time on with the wall clock from the last event's time, so
// an old window closes after the real time left to its end, not at once.
func TestIdleWatermarkEventTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := eventstore.New(memstore.New(), nil)
		e := start(t, store, &streamsql.Options{IdleTimeout: time.Second})
		defer e.stop(t)
		mustExec(t, e.Engine, `CREATE STREAM clicks (page STRING, at BIGINT) WITH (SOURCE='click-', TIMESTAMP='at')`)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pull, stop := iter.Pull2(e.Query(ctx, `SELECT page, COUNT(*) AS n FROM clicks
			WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY page EMIT FINAL`, &streamsql.QueryOptions{FromStart: true}))
		defer stop()
		t0 := time.Now()
		appendJSON(t, store, "click-1", "Clicked", `{"page":"home","at":30000}`) // 30 s into the window of 1970
		if got := render(next(t, pull)); got != "INSERT home 1" {
			t.Errorf("row: %s", got)
		}
		// 30 s of event time were left in the window.
		if d := time.Since(t0); d < 30*time.Second || d > 31*time.Second {
			t.Errorf("row emitted after %v, want 30 s (within one idle timeout)", d)
		}
	})
}

// TestPushSubscribersGetTheSameValues: every subscriber of a shared push
// query gets the same changes, nested values (ARRAY, MAP, STRUCT) and
// updates with their old rows included, whichever joined first.
func TestPushSubscribersGetTheSameValues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := eventstore.New(memstore.New(), nil)
		e := start(t, store, nil)
		defer e.stop(t)
		mustExec(t, e.Engine, `CREATE STREAM items (id STRING KEY, tags ARRAY<STRING>, attrs MAP<STRING, INT>, dim STRUCT<w INT, h INT>) WITH (SOURCE='item-')`)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const q = `SELECT id, tags, attrs, dim FROM items EMIT CHANGES`
		var pulls []func() (streamsql.Change, error, bool)
		var firsts []<-chan string
		for range 3 {
			pull, stop := iter.Pull2(e.Query(ctx, q, nil))
			defer stop()
			pulls = append(pulls, pull)
			firsts = append(firsts, later(pull))
		}
		synctest.Wait() // all subscribed to one query
		if got := e.RunningPushQueries(); got != 1 {
			t.Fatalf("running push queries: %d, want 1 shared", got)
		}
		appendJSON(t, store, "item-1", "Added", `{"id":"a","tags":["x","y"],"attrs":{"k":1},"dim":{"w":2,"h":3}}`)
		appendJSON(t, store, "item-2", "Added", `{"id":"b","tags":[],"attrs":{},"dim":{"w":4}}`)
		want := []streamsql.Change{
			{Op: streamsql.Insert, Row: []any{"a", []any{"x", "y"}, map[string]any{"k": int64(1)}, map[string]any{"w": int64(2), "h": int64(3)}}},
			{Op: streamsql.Insert, Row: []any{"b", []any{}, map[string]any{}, map[string]any{"w": int64(4), "h": nil}}},
		}
		for i, pull := range pulls {
			// The first change was pulled in the background, rendered.
			if got, want := <-firsts[i], render(want[0]); got != want {
				t.Errorf("subscriber %d, first change: %s, want %s", i, got, want)
			}
			got := next(t, pull)
			got.Columns, got.Position = nil, 0
			if d := cmp.Diff(want[1], got); d != "" {
				t.Errorf("subscriber %d, second change (-want +got):\n%s", i, d)
			}
		}
	})
}

// TestPushCancel: ending a subscriber's context ends its iterator with
// ctx.Err() even while it waits for changes, and the last subscriber
// leaving stops the query; a materialized table's subscriber likewise.
func TestPushCancel(t *testing.T) {
	for _, tc := range []struct{ name, setup, query string }{
		{"push", "", `SELECT id FROM orders EMIT CHANGES`},
		{"aggregation", "", `SELECT customer, COUNT(*) AS n FROM orders GROUP BY customer EMIT CHANGES`},
		{"table", `CREATE TABLE totals AS SELECT customer, COUNT(*) AS n FROM orders GROUP BY customer EMIT CHANGES`, `SELECT * FROM totals EMIT CHANGES`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := eventstore.New(memstore.New(), nil)
				e := start(t, store, nil)
				defer e.stop(t)
				mustExec(t, e.Engine, ordersDDL)
				if tc.setup != "" {
					mustExec(t, e.Engine, tc.setup)
				}
				ctx, cancel := context.WithCancel(context.Background())
				pull, stop := iter.Pull2(e.Query(ctx, tc.query, nil))
				defer stop()
				first := later(pull)
				synctest.Wait() // subscribed, waiting
				cancel()
				if got, want := <-first, "error: "+context.Canceled.Error(); got != want {
					t.Errorf("after cancel: %s, want %s", got, want)
				}
				if _, _, ok := pull(); ok {
					t.Error("the iterator went on after ctx.Err()")
				}
				synctest.Wait() // the query stops
				if got := e.RunningPushQueries(); got != 0 {
					t.Errorf("running push queries: %d, want 0", got)
				}
			})
		})
	}
}

// TestPushStarted: QueryOptions.Started is called once the push query has
// joined its running query, so an event appended right after it is
// delivered (a server sends its headers there).
func TestPushStarted(t *testing.T) {
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, nil)
	defer e.stop(t)
	mustExec(t, e.Engine, `CREATE STREAM clicks (page STRING) WITH (SOURCE='click-')`)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a failure guard: a missed event never comes
	defer cancel()
	if _, err := store.Append(ctx, "click-0", eventstore.Any, eventstore.Event{Type: "Clicked", Data: []byte(`{"page":"before"}`)}); err != nil {
		t.Fatal(err)
	}
	started := 0
	for ch, err := range e.Query(ctx, `SELECT page FROM clicks EMIT CHANGES`, &streamsql.QueryOptions{Started: func() {
		started++
		if _, err := store.Append(ctx, "click-1", eventstore.Any, eventstore.Event{Type: "Clicked", Data: []byte(`{"page":"after"}`)}); err != nil {
			t.Error(err)
		}
	}}) {
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.Row) != 1 || ch.Row[0] != "after" {
			t.Errorf("first change %s, want the event appended in Started", render(ch))
		}
		break
	}
	if started != 1 {
		t.Errorf("Started called %d times, want 1", started)
	}
}
