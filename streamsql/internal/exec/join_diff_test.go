package exec

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/streamsql/internal/plan"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// TestStreamJoinDiff runs random out-of-order rows (NULL keys among
// them) through INNER, LEFT, RIGHT and FULL stream–stream joins with and
// without a GRACE PERIOD, in random batches with idle watermarks,
// checkpoints and restarts, and compares the joined rows (as a multiset)
// and the late count with a plain model: a row older than stream time
// minus WITHIN and GRACE when it arrives is late; two rows join when
// their keys are equal, their ROWTIMEs at most WITHIN apart, and the
// first is not older than that horizon when the second arrives; after a
// final watermark every other row of a kept side appears with NULLs.
func TestStreamJoinDiff(t *testing.T) {
	const within = 2000
	for _, kind := range []string{"JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"} {
		for _, grace := range []int64{0, 1500} {
			q := planQuery(t, fmt.Sprintf(`CREATE STREAM a (id STRING, k INT) WITH (SOURCE='a-');
CREATE STREAM b (id STRING, k INT, j INT) WITH (SOURCE='b-');
SELECT a.id AS l, b.id AS r FROM a %s b WITHIN %d MILLISECONDS GRACE PERIOD %d MILLISECONDS ON a.k = b.k AND b.j = a.k * 2 EMIT CHANGES`, kind, within, grace))
			keep := [2]bool{kind == "LEFT JOIN" || kind == "FULL JOIN", kind == "RIGHT JOIN" || kind == "FULL JOIN"}
			for seed := range 100 {
				streamJoinCase(t, q, seed, keep, within, grace)
			}
		}
	}
}

type modelRow struct {
	side    int
	id      string
	key     int // -1 for NULL
	t       int64
	matched bool
}

func streamJoinCase(t *testing.T, q *plan.Query, seed int, keep [2]bool, within, grace int64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(seed), 17))
	log := &ErrorLog{}
	p := New(q, log)
	state := map[string][]byte{}
	var got, want []string
	var rows []*modelRow
	maxT, late := int64(-1<<62), int64(0)
	pair := func(l, r *modelRow) string {
		s := [2]string{"NULL", "NULL"}
		if l != nil {
			s[0] = l.id
		}
		if r != nil {
			s[1] = r.id
		}
		return s[0] + ", " + s[1]
	}
	collect := func(cs []Change) {
		for _, c := range cs {
			if c.Op != Insert {
				t.Fatalf("seed %d: a stream join emitted %v", seed, c)
			}
			got = append(got, RowString(c.Row))
		}
	}
	base := int64(10_000)
	n := rng.IntN(60)
	var batch []Event
	for i := range n {
		base += int64(rng.IntN(3)) * 500
		r := &modelRow{side: rng.IntN(2), key: rng.IntN(4) - 1, t: base - int64(rng.IntN(5))*700}
		r.id = fmt.Sprintf("%c%d", "ab"[r.side], i)
		off := int64(i + 1)
		k := "null"
		if r.key >= 0 {
			k = fmt.Sprint(r.key)
		}
		data := fmt.Sprintf(`{"id":%q,"k":%s}`, r.id, k)
		if r.side == 1 {
			// j = 2k matches the residual equality b.j = a.k * 2, except
			// sometimes.
			j := "null"
			if r.key >= 0 {
				j = fmt.Sprint(2 * r.key)
				if rng.IntN(6) == 0 {
					j = fmt.Sprint(2*r.key + 1)
					r.key += 100 // joins nothing
				}
			}
			data = fmt.Sprintf(`{"id":%q,"k":%s,"j":%s}`, r.id, k, j)
		}
		batch = append(batch, Event{Stream: fmt.Sprintf("%c-%d", "ab"[r.side], i), Type: "E", Time: r.t, Position: off, Version: 1, Data: []byte(data)})
		// The model.
		if h := maxT - within - grace; r.t < h {
			late++
		} else {
			for _, o := range rows {
				if o.side != r.side && o.key >= 0 && o.key == r.key && o.t >= h && max(o.t-r.t, r.t-o.t) <= within {
					o.matched, r.matched = true, true
					if r.side == 0 {
						want = append(want, pair(r, o))
					} else {
						want = append(want, pair(o, r))
					}
				}
			}
			rows = append(rows, r)
			maxT = max(maxT, r.t)
		}
		if rng.IntN(4) > 0 && i < n-1 {
			continue
		}
		collect(p.Process(batch))
		batch = batch[:0]
		switch rng.IntN(6) {
		case 0: // an idle watermark
			w := maxT + int64(rng.IntN(3000))
			collect(p.Watermark(w))
			maxT = max(maxT, w)
		case 1: // a checkpoint
			save(p, state)
		case 2: // a checkpoint and a restart from it
			save(p, state)
			p = New(q, log)
			for k, v := range state {
				if err := p.Load(k, v); err != nil {
					t.Fatalf("seed %d: load %q: %v", seed, k, err)
				}
			}
		}
	}
	collect(p.Watermark(maxT + 1_000_000))
	for _, r := range rows {
		if !r.matched && keep[r.side] {
			if r.side == 0 {
				want = append(want, pair(r, nil))
			} else {
				want = append(want, pair(nil, r))
			}
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("join kind %d, grace %d, seed %d (-want +got):\n%s", q.Join.Kind, grace, seed, d)
	}
	if l := log.late.Load(); l != late {
		t.Fatalf("seed %d: late=%d, want %d", seed, l, late)
	}
}

// TestTableChainDiff applies random changes to three tables through a
// chain a ⋈ b ⋈ c on their keys (every kind for the first join, INNER
// and LEFT for the second, whose ON names a's or b's key, with and
// without a residual equality), with checkpoints and restarts, and
// compares the materialized output with the chain computed from the
// final tables by SQL's rules (a NULL key matches nothing).
func TestTableChainDiff(t *testing.T) {
	for _, k1 := range []string{"JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"} {
		for _, k2 := range []string{"JOIN", "LEFT JOIN"} {
			for _, ref := range []string{"a", "b"} {
				for _, residual := range []bool{false, true} {
					on := "c.id = " + ref + ".id"
					if residual {
						on += " AND a.x = c.z"
					}
					sql := `CREATE TABLE a (id STRING PRIMARY KEY, x INT) WITH (SOURCE='a-');
CREATE TABLE b (id STRING PRIMARY KEY, y INT) WITH (SOURCE='b-');
CREATE TABLE c (id STRING PRIMARY KEY, z INT) WITH (SOURCE='c-');
SELECT a.id AS aid, b.id AS bid, c.id AS cid, x, y, z FROM a ` + k1 + ` b ON a.id = b.id ` + k2 + ` c ON ` + on + ` EMIT CHANGES`
					q := planQuery(t, sql)
					for seed := range 60 {
						tableChainCase(t, q, sql, seed, k1, k2, ref, residual)
					}
				}
			}
		}
	}
}

func tableChainCase(t *testing.T, q *plan.Query, sql string, seed int, k1, k2, ref string, residual bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(seed), 29))
	live := [3]map[string]int64{{}, {}, {}}
	var events []Event
	for i := range rng.IntN(60) {
		side, id := rng.IntN(3), fmt.Sprint(rng.IntN(4))
		stream := "abc"[side:side+1] + "-" + id
		off := int64(i + 1)
		if _, ok := live[side][id]; ok && rng.IntN(3) == 0 {
			delete(live[side], id)
			events = append(events, Event{Stream: stream, Type: "E", Time: off, Position: off, Version: 1, Data: []byte("null")})
			continue
		}
		v := int64(rng.IntN(3))
		for was, ok := live[side][id]; ok && v == was; {
			v = int64(rng.IntN(3)) // an update that changes nothing joined is a bug
		}
		live[side][id] = v
		events = append(events, Event{Stream: stream, Type: "E", Time: off, Position: off, Version: 1,
			Data: fmt.Appendf(nil, `{"id":%q,%q:%d}`, id, "xyz"[side:side+1], v)})
	}
	got, _ := runEvents(t, rng, q, events, 0)
	want := map[string]string{}
	for id := range 4 {
		k := fmt.Sprint(id)
		var has [3]bool
		var v [3]int64
		for s := range 3 {
			v[s], has[s] = live[s][k]
		}
		// The first join: which of a and b the row has.
		ab := has[0] && has[1]
		switch k1 {
		case "LEFT JOIN":
			ab = has[0]
		case "RIGHT JOIN":
			ab = has[1]
		case "FULL JOIN":
			ab = has[0] || has[1]
		}
		if !ab {
			continue
		}
		inA, inB := has[0] && (k1 != "RIGHT JOIN" || has[1]), has[1] && (k1 != "LEFT JOIN" || has[0])
		keyThere := inA
		if ref == "b" {
			keyThere = inB
		}
		match := keyThere && has[2] && (!residual || inA && v[0] == v[2])
		if !match && k2 == "JOIN" {
			continue
		}
		row := make([]Value, 6)
		for s, in := range []bool{inA, inB, match} {
			if in {
				row[s], row[3+s] = types.NewString(k), types.NewInt(v[s])
			}
		}
		want[k] = RowString(row)
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
		t.Fatalf("%s\nseed %d (-want +got):\n%s", sql, seed, d)
	}
}
