package drivertest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/driver"
)

// fixtureEvent is one event of the read fixture, in commit order: the
// event at index i has position i+1.
type fixtureEvent struct {
	Stream eventstore.StreamID
	Type   string
}

// readFixture covers categories that are prefixes of others ("order",
// "orderline"), a stream without a '-' and a stream with two.
var readFixture = []fixtureEvent{
	{"order-1", "OrderPlaced"}, {"order-1", "ItemAdded"}, // one append
	{"orderline-1", "LineAdded"},
	{"customer-7", "CustomerRegistered"},
	{"order-2", "OrderPlaced"},
	{"order-1", "ItemAdded"}, {"order-1", "OrderShipped"}, // one append
	{"order", "Noted"},
	{"customer-7", "CustomerMoved"},
	{"order-2-a", "OrderPlaced"},
	{"customerorder-1", "OrderPlaced"},
}

// loadFixture appends readFixture, grouping consecutive events of the same
// stream into one append.
func loadFixture(t *testing.T, ctx context.Context, st *eventstore.Store) {
	t.Helper()
	for i := 0; i < len(readFixture); {
		j := i + 1
		for j < len(readFixture) && readFixture[j].Stream == readFixture[i].Stream {
			j++
		}
		var evs []eventstore.Event
		for _, f := range readFixture[i:j] {
			evs = append(evs, event(f.Type))
		}
		appendOK(t, ctx, st, readFixture[i].Stream, eventstore.Any, evs...)
		i = j
	}
}

// matches is the suite's own model of a filter, independent of the driver's.
func matches(f eventstore.Filter, e fixtureEvent) bool {
	cat, _, _ := strings.Cut(string(e.Stream), "-")
	return strings.HasPrefix(string(e.Stream), f.StreamPrefix) &&
		(f.Category == "" || f.Category == cat) &&
		(len(f.EventTypes) == 0 || slices.Contains(f.EventTypes, e.Type))
}

// wantAll models a read of the fixture's $all: the positions it returns.
func wantAll(from, until eventstore.Position, backwards bool, limit int, f eventstore.Filter) []eventstore.Position {
	n := eventstore.Position(len(readFixture))
	if until == 0 || until > n {
		until = n
	}
	var out []eventstore.Position
	keep := func(p eventstore.Position) bool {
		if matches(f, readFixture[p-1]) {
			out = append(out, p)
		}
		return limit == 0 || len(out) < limit
	}
	if backwards {
		if from == 0 || from > until {
			from = until
		}
		for p := from; p >= 1 && keep(p); p-- {
		}
		return out
	}
	for p := max(from, 1); p <= until && keep(p); p++ {
	}
	return out
}

// testReadStream checks stream reads forwards and backwards with From and
// Limit.
func (s *suite) testReadStream(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	loadFixture(t, ctx, st)
	// order-1 has versions 1..4 at positions 1, 2, 6, 7.
	pos := map[eventstore.Version]eventstore.Position{1: 1, 2: 2, 3: 6, 4: 7}
	tests := []struct {
		name   string
		stream eventstore.StreamID
		opts   eventstore.ReadStreamOptions
		want   []eventstore.Version
	}{
		{"All", "order-1", eventstore.ReadStreamOptions{}, []eventstore.Version{1, 2, 3, 4}},
		{"From1", "order-1", eventstore.ReadStreamOptions{From: 1}, []eventstore.Version{1, 2, 3, 4}},
		{"From", "order-1", eventstore.ReadStreamOptions{From: 2}, []eventstore.Version{2, 3, 4}},
		{"FromLimit", "order-1", eventstore.ReadStreamOptions{From: 2, Limit: 2}, []eventstore.Version{2, 3}},
		{"Limit", "order-1", eventstore.ReadStreamOptions{Limit: 1}, []eventstore.Version{1}},
		{"LimitOverLength", "order-1", eventstore.ReadStreamOptions{Limit: 10}, []eventstore.Version{1, 2, 3, 4}},
		{"FromLast", "order-1", eventstore.ReadStreamOptions{From: 4}, []eventstore.Version{4}},
		{"FromPastEnd", "order-1", eventstore.ReadStreamOptions{From: 5}, nil},
		{"Backwards", "order-1", eventstore.ReadStreamOptions{Backwards: true}, []eventstore.Version{4, 3, 2, 1}},
		{"BackwardsFrom", "order-1", eventstore.ReadStreamOptions{Backwards: true, From: 3}, []eventstore.Version{3, 2, 1}},
		{"BackwardsFromLimit", "order-1", eventstore.ReadStreamOptions{Backwards: true, From: 3, Limit: 2}, []eventstore.Version{3, 2}},
		{"BackwardsLimit", "order-1", eventstore.ReadStreamOptions{Backwards: true, Limit: 1}, []eventstore.Version{4}},
		{"BackwardsFromFirst", "order-1", eventstore.ReadStreamOptions{Backwards: true, From: 1}, []eventstore.Version{1}},
		{"BackwardsFromPastEnd", "order-1", eventstore.ReadStreamOptions{Backwards: true, From: 9}, []eventstore.Version{4, 3, 2, 1}},
		{"NoSuchStream", "order-9", eventstore.ReadStreamOptions{}, nil},
		{"NoSuchStreamBackwards", "order-9", eventstore.ReadStreamOptions{Backwards: true}, nil},
		{"PrefixIsNotAStream", "order-", eventstore.ReadStreamOptions{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs := readStream(t, ctx, st, tc.stream, tc.opts)
			if diff := cmp.Diff(tc.want, versions(recs), cmpOpts); diff != "" {
				t.Errorf("versions (-want +got):\n%s", diff)
			}
			for _, r := range recs {
				if r.Stream != tc.stream || r.Position != pos[r.Version] {
					t.Errorf("version %d: stream %q position %d, want %q position %d", r.Version, r.Stream, r.Position, tc.stream, pos[r.Version])
				}
			}
		})
	}
}

// testReadAll checks $all reads forwards and backwards with From and Limit.
func (s *suite) testReadAll(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	if got := readAll(t, ctx, st, eventstore.ReadAllOptions{}); len(got) != 0 {
		t.Fatalf("ReadAll of an empty store returned %d events", len(got))
	}
	loadFixture(t, ctx, st)
	n := eventstore.Position(len(readFixture))
	tests := []struct {
		name string
		opts eventstore.ReadAllOptions
		want []eventstore.Position
	}{
		{"All", eventstore.ReadAllOptions{}, span(1, n)},
		{"From", eventstore.ReadAllOptions{From: 5}, span(5, n)},
		{"FromLimit", eventstore.ReadAllOptions{From: 5, Limit: 3}, []eventstore.Position{5, 6, 7}},
		{"Limit", eventstore.ReadAllOptions{Limit: 2}, []eventstore.Position{1, 2}},
		{"FromHead", eventstore.ReadAllOptions{From: n}, []eventstore.Position{n}},
		{"FromPastHead", eventstore.ReadAllOptions{From: n + 1}, nil},
		{"Backwards", eventstore.ReadAllOptions{Backwards: true}, reverse(span(1, n))},
		{"BackwardsFrom", eventstore.ReadAllOptions{Backwards: true, From: 5}, []eventstore.Position{5, 4, 3, 2, 1}},
		{"BackwardsFromLimit", eventstore.ReadAllOptions{Backwards: true, From: 5, Limit: 2}, []eventstore.Position{5, 4}},
		{"BackwardsLimit", eventstore.ReadAllOptions{Backwards: true, Limit: 3}, []eventstore.Position{n, n - 1, n - 2}},
		{"BackwardsFromPastHead", eventstore.ReadAllOptions{Backwards: true, From: n + 5}, reverse(span(1, n))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs := readAll(t, ctx, st, tc.opts)
			if diff := cmp.Diff(tc.want, positions(recs), cmpOpts); diff != "" {
				t.Errorf("positions (-want +got):\n%s", diff)
			}
			for _, r := range recs {
				if f := readFixture[r.Position-1]; r.Stream != f.Stream || r.Type != f.Type {
					t.Errorf("position %d: %s/%s, want %s/%s", r.Position, r.Stream, r.Type, f.Stream, f.Type)
				}
			}
		})
	}
}

// testReadAllUntil checks the driver's Until bound, which subscriptions
// rely on to read up to a head they observed.
func (s *suite) testReadAllUntil(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	loadFixture(t, ctx, st)
	b := st.Backend()
	order := eventstore.Filter{Category: "order"}
	tests := []struct {
		name string
		q    driver.AllQuery
		want []eventstore.Position
	}{
		{"Until", driver.AllQuery{Until: 5}, span[eventstore.Position](1, 5)},
		{"FromUntil", driver.AllQuery{From: 3, Until: 5}, []eventstore.Position{3, 4, 5}},
		{"FromEqualsUntil", driver.AllQuery{From: 5, Until: 5}, []eventstore.Position{5}},
		{"UntilLimit", driver.AllQuery{Until: 5, Limit: 2}, []eventstore.Position{1, 2}},
		{"UntilPastHead", driver.AllQuery{Until: 100}, span[eventstore.Position](1, 11)},
		{"BackwardsUntil", driver.AllQuery{Until: 5, Backwards: true}, []eventstore.Position{5, 4, 3, 2, 1}},
		{"BackwardsFromUntil", driver.AllQuery{From: 4, Until: 8, Backwards: true}, []eventstore.Position{4, 3, 2, 1}},
		{"UntilFilter", driver.AllQuery{Until: 6, Filter: driver.Filter{Category: "order"}}, wantAll(0, 6, false, 0, order)},
		{"BackwardsUntilFilterLimit", driver.AllQuery{Until: 9, Backwards: true, Limit: 2, Filter: driver.Filter{Category: "order"}}, wantAll(0, 9, true, 2, order)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := collect(b.ReadAll(ctx, tc.q))
			if err != nil {
				t.Fatalf("backend ReadAll(%+v): %v", tc.q, err)
			}
			var got []eventstore.Position
			for _, r := range recs {
				got = append(got, eventstore.Position(r.Position))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("positions (-want +got):\n%s", diff)
			}
		})
	}
}

// testReadFilter checks $all reads with every filter and combinations,
// forwards and backwards, with From and Limit, against the suite's own
// model of filters.
func (s *suite) testReadFilter(t *testing.T) {
	ctx, st := s.ctx(t), s.store(t)
	loadFixture(t, ctx, st)
	filters := []struct {
		name string
		f    eventstore.Filter
	}{
		{"CategoryOrder", eventstore.Filter{Category: "order"}},
		{"CategoryOrderline", eventstore.Filter{Category: "orderline"}},
		{"CategoryCustomer", eventstore.Filter{Category: "customer"}},
		{"CategoryNone", eventstore.Filter{Category: "invoice"}},
		{"PrefixOrder", eventstore.Filter{StreamPrefix: "order"}},
		{"PrefixOrderDash", eventstore.Filter{StreamPrefix: "order-"}},
		{"PrefixWholeName", eventstore.Filter{StreamPrefix: "order-2"}},
		{"PrefixNone", eventstore.Filter{StreamPrefix: "zzz"}},
		{"Type", eventstore.Filter{EventTypes: []string{"OrderPlaced"}}},
		{"Types", eventstore.Filter{EventTypes: []string{"ItemAdded", "CustomerMoved"}}},
		{"TypeNone", eventstore.Filter{EventTypes: []string{"Nope"}}},
		{"CategoryAndType", eventstore.Filter{Category: "order", EventTypes: []string{"OrderPlaced", "Noted"}}},
		{"PrefixAndCategory", eventstore.Filter{StreamPrefix: "order-2", Category: "order"}},
		{"PrefixAndOtherCategory", eventstore.Filter{StreamPrefix: "orderline", Category: "order"}},
		{"All3", eventstore.Filter{StreamPrefix: "customer", Category: "customer", EventTypes: []string{"CustomerMoved"}}},
	}
	reads := []struct {
		name      string
		from      eventstore.Position
		backwards bool
		limit     int
	}{
		{"Forwards", 0, false, 0},
		{"FromLimit", 4, false, 2},
		{"Backwards", 0, true, 0},
		{"BackwardsFromLimit", 9, true, 2},
		{"Limit1", 0, false, 1},
	}
	for _, f := range filters {
		for _, r := range reads {
			t.Run(f.name+"/"+r.name, func(t *testing.T) {
				o := eventstore.ReadAllOptions{From: r.from, Backwards: r.backwards, Limit: r.limit, Filter: f.f}
				got := positions(readAll(t, ctx, st, o))
				if diff := cmp.Diff(wantAll(r.from, 0, r.backwards, r.limit, f.f), got, cmpOpts); diff != "" {
					t.Errorf("ReadAll(%+v) positions (-want +got):\n%s", o, diff)
				}
			})
		}
	}
}
