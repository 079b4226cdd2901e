package exec

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// planQuery plans the CREATE statements and the query of sql.
func planQuery(t *testing.T, sql string) *plan.Query {
	t.Helper()
	stmts, err := parse.ParseAll(sql)
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog{}
	var q *plan.Query
	for _, s := range stmts {
		switch s := s.(type) {
		case *parse.CreateSource:
			src, err := plan.Create(s)
			if err != nil {
				t.Fatal(err)
			}
			cat[strings.ToUpper(src.Name)] = src
		case *parse.Select:
			if q, err = plan.Select(s, cat); err != nil {
				t.Fatal(err)
			}
		}
	}
	return q
}

// materialize applies a changelog to a table keyed by Change.Key, failing
// on a change that does not fit the table (an insert of a present key, an
// update or delete whose old row is not the one held).
func materialize(t *testing.T, table map[string][]Value, cs []Change) {
	t.Helper()
	for _, c := range cs {
		held, ok := table[c.Key]
		switch c.Op {
		case Insert:
			if ok {
				t.Fatalf("insert of present key: %v (held %s)", c, RowString(held))
			}
			table[c.Key] = slices.Clone(c.Row)
		case Update:
			if !ok || RowString(held) != RowString(c.Old) {
				t.Fatalf("update does not match the held row %s: %v", RowString(held), c)
			}
			table[c.Key] = slices.Clone(c.Row)
		case Delete:
			if !ok || RowString(held) != RowString(c.Row) {
				t.Fatalf("delete does not match the held row %s: %v", RowString(held), c)
			}
			delete(table, c.Key)
		}
	}
}

// runEvents feeds events in random batches, restarting from saved state
// at random points, and returns the materialized output table.
func runEvents(t *testing.T, rng *rand.Rand, q *plan.Query, events []Event, watermark int64) (map[string][]Value, *ErrorLog) {
	log := &ErrorLog{}
	p := New(q, log)
	table := map[string][]Value{}
	state := map[string][]byte{}
	for i := 0; i < len(events); {
		n := min(1+rng.IntN(5), len(events)-i)
		cs := p.Process(events[i : i+n])
		materialize(t, table, cs)
		i += n
		switch rng.IntN(8) {
		case 0: // a checkpoint
			save(p, state)
		case 1: // a checkpoint and a restart from the saved state
			save(p, state)
			p = New(q, log)
			for k, v := range state {
				if err := p.Load(k, v); err != nil {
					t.Fatalf("load %q: %v", k, err)
				}
			}
		}
	}
	if watermark != 0 {
		materialize(t, table, p.Watermark(watermark))
	}
	return table, log
}

// TestAggregateRetractionsDiff folds random table changes (inserts,
// updates that move rows between groups, deletes, NULLs, values near the
// BIGINT limits) through every aggregate and compares the materialized
// output with the aggregates recomputed from the final table.
func TestAggregateRetractionsDiff(t *testing.T) {
	q := planQuery(t, `CREATE TABLE t (id STRING PRIMARY KEY, k STRING, v STRING, n INT, b BIGINT) WITH (SOURCE='t-');
SELECT k, COUNT(*) AS c, COUNT(v) AS cv, SUM(n) AS s, AVG(n) AS a, MIN(n) AS lo, MAX(v) AS hi,
  COUNT_DISTINCT(v) AS d, COLLECT_SET(v) AS st, TOPK(n, 3) AS top, LATEST_BY_OFFSET(v) AS latest,
  EARLIEST_BY_OFFSET(n) AS earliest, COLLECT_LIST(v) AS l, SUM(b) AS sb
FROM t GROUP BY k HAVING COUNT(*) > 1 OR MAX(n) > 7 EMIT CHANGES`)
	type row struct {
		id, k, v string
		vNull    bool
		n        int64
		nNull    bool
		b        int64
		off      int64
	}
	bigs := []int64{math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, 1, -1, 0, math.MinInt64 + 1}
	for seed := range 200 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		live := map[string]row{}
		var events []Event
		for i := range 1 + rng.IntN(60) {
			id := fmt.Sprint(rng.IntN(8))
			off := int64(i + 1)
			stream := "t-" + id
			if _, ok := live[id]; ok && rng.IntN(4) == 0 {
				delete(live, id)
				events = append(events, Event{Stream: stream, Type: "E", Time: off, Position: off, Version: 1, Data: []byte("null")})
				continue
			}
			r := row{id: id, k: string(rune('a' + rng.IntN(3))), v: string(rune('p' + rng.IntN(4))), vNull: rng.IntN(5) == 0,
				n: int64(rng.IntN(10)), nNull: rng.IntN(5) == 0, b: bigs[rng.IntN(len(bigs))], off: off}
			live[id] = r
			m := map[string]any{"id": r.id, "k": r.k, "b": r.b}
			if !r.vNull {
				m["v"] = r.v
			}
			if !r.nNull {
				m["n"] = r.n
			}
			data, _ := json.Marshal(m)
			events = append(events, Event{Stream: stream, Type: "E", Time: off, Position: off, Version: 1, Data: data})
		}
		got, log := runEvents(t, rng, q, events, 0)
		if d, r, l := log.Counts(); d+r+l > 0 {
			t.Fatalf("seed %d: errors %d %d %d: %v", seed, d, r, l, log.Recent())
		}

		// The expected table, from the live rows.
		byKey := map[string][]row{}
		for _, r := range live {
			byKey[r.k] = append(byKey[r.k], r)
		}
		want := map[string]string{}
		for k, rs := range byKey {
			slices.SortFunc(rs, func(x, y row) int { return int(x.off - y.off) })
			var cv, s, cn, maxN int64
			maxN = -1
			var lo, hi, latest, earliest Value
			set := map[string]bool{}
			var ns []int64
			var list []Value
			sb := new(big.Int)
			for _, r := range rs {
				sb.Add(sb, big.NewInt(r.b))
				if r.vNull {
					list = append(list, Value{})
				} else {
					cv++
					set[r.v] = true
					list = append(list, types.NewString(r.v))
					latest = types.NewString(r.v)
					if hi.IsNull() || r.v > hi.S {
						hi = types.NewString(r.v)
					}
				}
				if !r.nNull {
					cn++
					s += r.n
					ns = append(ns, r.n)
					maxN = max(maxN, r.n)
					if lo.IsNull() || r.n < lo.I {
						lo = types.NewInt(r.n)
					}
					if earliest.IsNull() {
						earliest = types.NewInt(r.n)
					}
				}
			}
			if !(len(rs) > 1 || maxN > 7) {
				continue
			}
			sum, avg := Value{}, Value{}
			if cn > 0 {
				sum, avg = types.NewInt(s), types.NewDouble(float64(s)/float64(cn))
			}
			var st []Value
			for _, v := range slices.Sorted(func(yield func(string) bool) {
				for v := range set {
					if !yield(v) {
						return
					}
				}
			}) {
				st = append(st, types.NewString(v))
			}
			if st == nil {
				st = []Value{}
			}
			slices.Sort(ns)
			slices.Reverse(ns)
			top := []Value{}
			for _, n := range ns[:min(3, len(ns))] {
				top = append(top, types.NewInt(n))
			}
			sbv := Value{}
			if sb.IsInt64() {
				sbv = types.NewInt(sb.Int64())
			}
			want[k] = RowString([]Value{types.NewString(k), types.NewInt(int64(len(rs))), types.NewInt(cv), sum, avg, lo, hi,
				types.NewInt(int64(len(set))), types.NewArray(st), types.NewArray(top), latest, earliest, types.NewArray(list), sbv})
		}
		gotS := map[string]string{}
		for _, r := range got {
			gotS[r[0].S] = RowString(r)
		}
		for k := range union(want, gotS) {
			if want[k] != gotS[k] {
				t.Errorf("seed %d: group %s:\n got %s\nwant %s", seed, k, gotS[k], want[k])
			}
		}
		if t.Failed() {
			return
		}
	}
}

// save writes p's changed state into state, as a checkpoint does.
func save(p *Pipeline, state map[string][]byte) {
	p.Save(func(k string, v []byte) {
		if v == nil {
			delete(state, k)
		} else {
			state[k] = v
		}
	})
}

func union(a, b map[string]string) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}
