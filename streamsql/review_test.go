package streamsql_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
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
