package exec

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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

// TestWindowsDiff runs random out-of-order events through tumbling,
// hopping and session windows (EMIT CHANGES and EMIT FINAL, with grace
// periods, idle watermarks, checkpoints and restarts) and compares the
// materialized output and the late-event count with a plain fold.
func TestWindowsDiff(t *testing.T) {
	type win struct {
		kind                 string // TUMBLING, HOPPING or SESSION
		size, advance, grace int64  // seconds
	}
	wins := []win{{"TUMBLING", 10, 0, 0}, {"TUMBLING", 10, 0, 3}, {"HOPPING", 10, 5, 0}, {"HOPPING", 12, 4, 2},
		{"SESSION", 4, 0, 0}, {"SESSION", 3, 0, 5}}
	for _, w := range wins {
		for _, final := range []bool{false, true} {
			clause := fmt.Sprintf("TUMBLING (SIZE %d SECONDS, GRACE PERIOD %d SECONDS)", w.size, w.grace)
			switch w.kind {
			case "HOPPING":
				clause = fmt.Sprintf("HOPPING (SIZE %d SECONDS, ADVANCE BY %d SECONDS, GRACE PERIOD %d SECONDS)", w.size, w.advance, w.grace)
			case "SESSION":
				clause = fmt.Sprintf("SESSION (%d SECONDS, GRACE PERIOD %d SECONDS)", w.size, w.grace)
			}
			emit := "EMIT CHANGES"
			if final {
				emit = "EMIT FINAL"
			}
			q := planQuery(t, `CREATE STREAM s (k STRING, v INT) WITH (SOURCE='s-');
SELECT k, COUNT(*) AS c, SUM(v) AS total FROM s WINDOW `+clause+` GROUP BY k `+emit)
			t.Run(clause+" "+emit, func(t *testing.T) {
				for seed := range 150 {
					windowsCase(t, q, seed, w.kind, w.size*1000, w.advance*1000, w.grace*1000, final)
					if t.Failed() {
						t.Fatalf("seed %d", seed)
					}
				}
			})
		}
	}
}

type winAgg struct{ c, sum int64 }

func windowsCase(t *testing.T, q *plan.Query, seed int, kind string, size, adv, grace int64, final bool) {
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	type ev struct {
		wm   bool
		t, v int64
		k    string
	}
	var evs []ev
	now := int64(rng.IntN(3)) * 1000
	for range 1 + rng.IntN(40) {
		now += int64(rng.IntN(4000))
		if rng.IntN(10) == 0 {
			evs = append(evs, ev{wm: true, t: now + int64(rng.IntN(8000))})
			continue
		}
		t := now - int64(rng.IntN(12000))
		if seed%2 == 0 { // coarse times: equal ROWTIMEs, rows at window bounds
			t -= mod(t, 500)
		}
		evs = append(evs, ev{t: t, v: int64(rng.IntN(100)), k: string(rune('a' + rng.IntN(2)))})
	}
	end := now + 1_000_000
	evs = append(evs, ev{wm: true, t: end})

	// The fold.
	want := map[string]winAgg{} // "k@ws"
	type sess struct {
		ws, we int64
		agg    winAgg
	}
	sessions := map[string][]*sess{}
	var late int64
	streamTime := int64(-1 << 62)
	for _, e := range evs {
		if e.wm {
			streamTime = max(streamTime, e.t)
			continue
		}
		switch kind {
		case "SESSION":
			var hit, keep []*sess
			for _, s := range sessions[e.k] {
				// A closed session is final: nothing joins it.
				if s.we+size+grace > streamTime && e.t >= s.ws-size && e.t <= s.we+size {
					hit = append(hit, s)
				} else {
					keep = append(keep, s)
				}
			}
			if e.t+size+grace <= streamTime {
				late++
				break
			}
			n := &sess{ws: e.t, we: e.t, agg: winAgg{1, e.v}}
			for _, s := range hit {
				n.ws, n.we = min(n.ws, s.ws), max(n.we, s.we)
				n.agg.c += s.agg.c
				n.agg.sum += s.agg.sum
			}
			sessions[e.k] = append(keep, n)
		default:
			step := adv
			if step == 0 {
				step = size
			}
			for ws := e.t - size - (e.t-size)%step; ws <= e.t; ws += step {
				if ws <= e.t-size || ws > e.t || ws%step != 0 {
					continue
				}
				if ws+size+grace <= streamTime {
					late++
					continue
				}
				id := fmt.Sprintf("%s@%d", e.k, ws)
				a := want[id]
				want[id] = winAgg{a.c + 1, a.sum + e.v}
			}
		}
		streamTime = max(streamTime, e.t)
	}
	for k, ss := range sessions {
		for _, s := range ss {
			want[fmt.Sprintf("%s@%d", k, s.ws)] = s.agg
		}
	}

	// The engine, in random batches with checkpoints and restarts.
	log := &ErrorLog{}
	p := New(q, log)
	table := map[string][]Value{}
	state := map[string][]byte{}
	got := map[string]winAgg{}
	var batch []Event
	apply := func(cs []Change) {
		for _, c := range cs {
			if final && c.Op != Insert {
				t.Errorf("EMIT FINAL emitted %v", c)
			}
			id := fmt.Sprintf("%s@%d", c.KeyVals[0].S, c.WindowStart)
			if c.Op == Delete {
				delete(got, id)
			} else {
				got[id] = winAgg{c.Row[1].I, c.Row[2].I}
			}
		}
		materialize(t, table, cs)
	}
	for i, e := range evs {
		if !e.wm {
			data, _ := json.Marshal(map[string]any{"k": e.k, "v": e.v})
			batch = append(batch, Event{Stream: "s-1", Type: "E", Time: e.t, Position: int64(i + 1), Version: 1, Data: data})
		}
		if e.wm || rng.IntN(3) == 0 {
			apply(p.Process(batch))
			batch = batch[:0]
		}
		if e.wm {
			apply(p.Watermark(e.t))
		}
		switch rng.IntN(10) {
		case 0:
			apply(p.Process(batch))
			batch = batch[:0]
			save(p, state)
		case 1:
			apply(p.Process(batch))
			batch = batch[:0]
			save(p, state)
			p = New(q, log)
			for k, v := range state {
				if err := p.Load(k, v); err != nil {
					t.Fatalf("load %q: %v", k, err)
				}
			}
		}
	}
	for id := range union(toStrings(want), toStrings(got)) {
		if want[id] != got[id] {
			t.Errorf("window %s: got %v, want %v", id, got[id], want[id])
		}
	}
	if _, _, l := log.Counts(); l != late {
		t.Errorf("late events: got %d, want %d", l, late)
	}
}

func toStrings(m map[string]winAgg) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// TestLikeDiff compares Like with a regular expression built from the
// pattern, over random strings with non-ASCII characters.
func TestLikeDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	alpha := []rune{'a', 'b', 'é', '日', '.', '*', '%', '_'}
	word := func(n int) string {
		r := make([]rune, rng.IntN(n))
		for i := range r {
			r[i] = alpha[rng.IntN(len(alpha))]
		}
		return string(r)
	}
	for range 20000 {
		s, p := word(7), word(6)
		var re strings.Builder
		re.WriteString(`^(?s:`)
		for _, r := range p {
			switch r {
			case '%':
				re.WriteString(`.*`)
			case '_':
				re.WriteString(`.`)
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		re.WriteString(`)$`)
		if got, want := Like(s, p), regexp.MustCompile(re.String()).MatchString(s); got != want {
			t.Fatalf("Like(%q, %q) = %v, want %v", s, p, got, want)
		}
	}
}

// TestTableJoinDiff applies random changes to two tables (inserts,
// updates, deletes) through INNER, LEFT, RIGHT and FULL table–table joins,
// with checkpoints and restarts, and compares the materialized output with
// the join of the final tables.
func TestTableJoinDiff(t *testing.T) {
	for _, kind := range []string{"JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"} {
		q := planQuery(t, `CREATE TABLE a (id STRING PRIMARY KEY, x INT) WITH (SOURCE='a-');
CREATE TABLE b (id STRING PRIMARY KEY, y INT) WITH (SOURCE='b-');
SELECT a.id AS aid, b.id AS bid, x, y FROM a `+kind+` b ON a.id = b.id EMIT CHANGES`)
		for seed := range 100 {
			rng := rand.New(rand.NewPCG(uint64(seed), 13))
			live := [2]map[string]int64{{}, {}}
			var events []Event
			for i := range rng.IntN(50) {
				side, id := rng.IntN(2), fmt.Sprint(rng.IntN(5))
				stream := "ab"[side:side+1] + "-" + id
				off := int64(i + 1)
				if _, ok := live[side][id]; ok && rng.IntN(3) == 0 {
					delete(live[side], id)
					events = append(events, Event{Stream: stream, Type: "E", Time: off, Position: off, Version: 1, Data: []byte("null")})
					continue
				}
				v := int64(rng.IntN(100))
				live[side][id] = v
				col := "xy"[side : side+1]
				events = append(events, Event{Stream: stream, Type: "E", Time: off, Position: off, Version: 1,
					Data: fmt.Appendf(nil, `{"id":%q,%q:%d}`, id, col, v)})
			}
			got, _ := runEvents(t, rng, q, events, 0)
			want := map[string]string{}
			for id := range 5 {
				k := fmt.Sprint(id)
				x, hasA := live[0][k]
				y, hasB := live[1][k]
				row := []Value{{}, {}, {}, {}}
				if hasA {
					row[0], row[2] = types.NewString(k), types.NewInt(x)
				}
				if hasB {
					row[1], row[3] = types.NewString(k), types.NewInt(y)
				}
				keep := map[string]bool{"JOIN": hasA && hasB, "LEFT JOIN": hasA, "RIGHT JOIN": hasB, "FULL JOIN": hasA || hasB}[kind]
				if keep {
					want[k] = RowString(row)
				}
			}
			gotS := map[string]string{}
			for _, r := range got {
				k := r[0].S
				if r[0].IsNull() {
					k = r[1].S
				}
				gotS[k] = RowString(r)
			}
			if d := cmp.Diff(want, gotS); d != "" {
				t.Fatalf("%s, seed %d (-want +got):\n%s", kind, seed, d)
			}
		}
	}
}
