package filestore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/eventstore/filestore"
	"github.com/fjord-data/fjord/eventstore/memstore"
)

var bg = context.Background()

func open(t testing.TB, dir string, opts *filestore.Options) *filestore.Store {
	t.Helper()
	s, err := filestore.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var idSeq uint64

func id(n uint64) (b [16]byte) {
	for i := 0; i < 8; i++ {
		b[15-i] = byte(n >> (8 * i))
	}
	b[0] = 0x42
	return b
}

func ev(n uint64, typ string) driver.Event {
	return driver.Event{ID: id(n), Type: typ, ContentType: "application/json",
		Data: []byte(fmt.Sprintf(`{"n":%d}`, n)), Metadata: []byte(`{"m":1}`), CorrelationID: "corr", CausationID: "cause"}
}

func one(stream string, exp driver.Expected, evs ...driver.Event) *driver.Batch {
	return &driver.Batch{Appends: []driver.StreamAppend{{Stream: stream, Expected: exp, Events: evs}}}
}

func commit(t testing.TB, b driver.Backend, batch *driver.Batch) driver.Committed {
	t.Helper()
	c, err := b.Commit(bg, batch)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return c
}

func collect(seq func(func(driver.Record, error) bool)) ([]driver.Record, error) {
	var out []driver.Record
	for r, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ignoreTime compares records without their commit time, which differs
// between backends.
var ignoreTime = cmpopts.IgnoreFields(driver.Record{}, "Time")

// workload feeds the same batches to any backend: several streams and
// categories, event types, nil and empty payloads, multi-stream commits.
func workload(t testing.TB, b driver.Backend) {
	t.Helper()
	n := uint64(0)
	next := func(typ string) driver.Event { n++; return ev(n, typ) }
	for i := 0; i < 30; i++ {
		stream := fmt.Sprintf("order-%d", i%4)
		typ := []string{"Placed", "Paid", "Shipped"}[i%3]
		commit(t, b, one(stream, driver.Expected{}, next(typ), next("Noted")))
		if i%5 == 0 {
			e := next("Registered")
			e.Data, e.Metadata = nil, []byte{}
			commit(t, b, &driver.Batch{Appends: []driver.StreamAppend{
				{Stream: fmt.Sprintf("customer-%d", i), Events: []driver.Event{e}},
				{Stream: "audit", Events: []driver.Event{next("Audited"), next("Audited")}},
			}})
		}
	}
}

func allQueries() map[string]driver.AllQuery {
	return map[string]driver.AllQuery{
		"all":                {},
		"from 10":            {From: 10},
		"from 10 until 20":   {From: 10, Until: 20},
		"limit 7":            {Limit: 7},
		"from past head":     {From: 1000},
		"backwards":          {Backwards: true},
		"backwards from 40":  {Backwards: true, From: 40},
		"backwards limit 5":  {Backwards: true, Limit: 5},
		"backwards until 30": {Backwards: true, Until: 30},
		"backwards from big": {Backwards: true, From: 1000},
		"category":           {Filter: driver.Filter{Category: "order"}},
		"category back":      {Filter: driver.Filter{Category: "customer"}, Backwards: true},
		"category from":      {Filter: driver.Filter{Category: "order"}, From: 20, Limit: 5},
		"types":              {Filter: driver.Filter{EventTypes: []string{"Paid", "Audited", "Paid"}}},
		"types back limit":   {Filter: driver.Filter{EventTypes: []string{"Paid", "Registered"}}, Backwards: true, Limit: 4},
		"types and category": {Filter: driver.Filter{Category: "order", EventTypes: []string{"Noted"}}},
		"prefix":             {Filter: driver.Filter{StreamPrefix: "order-1"}},
		"prefix back":        {Filter: driver.Filter{StreamPrefix: "cust"}, Backwards: true, From: 50},
		"prefix and type":    {Filter: driver.Filter{StreamPrefix: "order", EventTypes: []string{"Shipped"}}, Until: 60},
		"no match":           {Filter: driver.Filter{Category: "nothing"}},
	}
}

func streamQueries() map[string]driver.StreamQuery {
	return map[string]driver.StreamQuery{
		"whole":          {Stream: "order-1"},
		"from 3":         {Stream: "order-1", From: 3},
		"limit":          {Stream: "order-2", From: 2, Limit: 3},
		"past end":       {Stream: "order-2", From: 100},
		"backwards":      {Stream: "order-3", Backwards: true},
		"backwards from": {Stream: "order-3", Backwards: true, From: 4, Limit: 2},
		"backwards big":  {Stream: "audit", Backwards: true, From: 100},
		"missing":        {Stream: "nope"},
		"one":            {Stream: "customer-5"},
	}
}

// compare checks that s answers every query as the reference memstore does.
func compare(t *testing.T, s driver.Backend) {
	t.Helper()
	ref := memstore.New()
	defer ref.Close()
	workload(t, ref)
	for name, q := range allQueries() {
		want, werr := collect(ref.ReadAll(bg, q))
		got, gerr := collect(s.ReadAll(bg, q))
		if gerr != nil || werr != nil {
			t.Fatalf("ReadAll %s: got error %v, memstore %v", name, gerr, werr)
		}
		if diff := cmp.Diff(want, got, ignoreTime); diff != "" {
			t.Errorf("ReadAll %s (-memstore +filestore):\n%s", name, diff)
		}
	}
	for name, q := range streamQueries() {
		want, _ := collect(ref.ReadStream(bg, q))
		got, err := collect(s.ReadStream(bg, q))
		if err != nil {
			t.Fatalf("ReadStream %s: %v", name, err)
		}
		if diff := cmp.Diff(want, got, ignoreTime); diff != "" {
			t.Errorf("ReadStream %s (-memstore +filestore):\n%s", name, diff)
		}
	}
	for _, stream := range []string{"order-0", "audit", "customer-25", "missing"} {
		want, werr := ref.StreamInfo(bg, stream)
		got, gerr := s.StreamInfo(bg, stream)
		if !errors.Is(gerr, werr) && (gerr != nil || werr != nil) {
			t.Errorf("StreamInfo(%s) error = %v, want %v", stream, gerr, werr)
		}
		if got.Version != want.Version || got.Position != want.Position {
			t.Errorf("StreamInfo(%s) = %+v, want %+v", stream, got, want)
		}
	}
	wh, _ := ref.Head(bg)
	gh, err := s.Head(bg)
	if err != nil || gh != wh {
		t.Errorf("Head = %d, %v; want %d", gh, err, wh)
	}
}

func TestMatchesMemstore(t *testing.T) {
	for name, opts := range map[string]*filestore.Options{
		"defaults":      nil,
		"tiny segments": {SegmentSize: 4096, MaxGroupEvents: 3},
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t, t.TempDir(), opts)
			workload(t, s)
			compare(t, s)
		})
	}
}

func TestReopen(t *testing.T) {
	for name, opts := range map[string]*filestore.Options{
		"defaults":      nil,
		"tiny segments": {SegmentSize: 4096},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, opts)
			workload(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, dir, opts)
			compare(t, s)
		})
	}
}
