package exec

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/fjord-data/fjord/streamsql/internal/fn"
	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// joiner joins the left stream's rows with the right source: a stream–
// table join looks up the table's current row by key (table changes emit
// nothing); a stream–stream join buffers both sides for WITHIN plus the
// GRACE PERIOD and emits each pair of rows with equal keys whose ROWTIMEs
// are at most WITHIN apart, when the second of the two arrives, unless
// the first has expired by then (its ROWTIME is older than the horizon:
// stream time minus WITHIN and GRACE). A row arriving older than the
// horizon is late: dropped and counted. When stream time (the newest
// ROWTIME, or the idle watermark) moves the horizon past a row that never
// matched, an outer join emits it with NULLs for the other side.
type joiner struct {
	j                   *plan.Join
	right               *sourceReader
	leftKeys, rightKeys []Eval
	// keyTypes are the types each pair of keys is compared in: the
	// table's key type, or the keys' common type for a stream–stream join.
	keyTypes []*types.Type
	residual []Eval
	nl, nr   int
	log      *ErrorLog
	// outer says which sides (0 left, 1 right) an unmatched row of a
	// stream–stream join is emitted for.
	outer [2]bool
	// Stream–stream buffers by key, and each side's rows in (ROWTIME,
	// offset) order for expiry.
	buf   [2]map[string][]bufRow
	order [2][]bufRef
	// maxTime is stream time: the newest ROWTIME seen or watermark set.
	maxTime   int64
	metaDirty bool
	dirty     map[string]bool // "L"/"R" + offset
	keyBuf    []byte
	// unsorted: rows were loaded, and the orders need sorting.
	unsorted bool
}

type bufRow struct {
	t, off  int64
	row     []Value
	matched bool
}

type bufRef struct {
	key    string
	t, off int64
}

func newJoiner(q *plan.Query, log *ErrorLog) *joiner {
	j := &joiner{j: q.Join, right: newSourceReader(q.Join.Right, log), nl: q.Join.RightStart,
		nr: len(q.Input) - q.Join.RightStart, dirty: map[string]bool{}, log: log, maxTime: -1 << 62}
	if !q.Join.Right.Table {
		k := q.Join.Kind
		j.outer = [2]bool{k == parse.JoinLeft || k == parse.JoinFull, k == parse.JoinRight || k == parse.JoinFull}
	}
	for i, l := range q.Join.LeftKeys {
		r := q.Join.RightKeys[i]
		j.leftKeys, j.rightKeys = append(j.leftKeys, Compile(l, log)), append(j.rightKeys, Compile(r, log))
		t := r.T
		if !q.Join.Right.Table {
			switch {
			case l.T.Kind == types.Timestamp || r.T.Kind == types.Timestamp:
				t = types.TimestampT
			default:
				if c, ok := fn.Common(l.T, r.T); ok {
					t = c
				}
			}
		}
		j.keyTypes = append(j.keyTypes, t)
	}
	for _, e := range q.Join.Residual {
		j.residual = append(j.residual, Compile(e, log))
	}
	j.buf[0], j.buf[1] = map[string][]bufRow{}, map[string][]bufRow{}
	return j
}

// key returns the join key of a row of one side (fs are its key
// expressions): the keys' encodings one after another, which is one
// table key for a join with a table. A NULL key matches nothing.
func (j *joiner) key(fs []Eval, row []Value) (string, bool) {
	j.keyBuf = j.keyBuf[:0]
	for i, f := range fs {
		v := f(row)
		if v.IsNull() {
			return "", false
		}
		// Equal values of different types (1 and 1.0, DECIMALs of
		// different scales) must have one key: convert to the key type,
		// and a value the key type cannot hold exactly matches nothing.
		if t := j.keyTypes[i]; v.K != t.Kind || t.Kind == types.Decimal && int(v.Sc) != t.Scale {
			c, err := Cast(v, t)
			if err != nil || c.IsNull() || types.Compare(c, v) != 0 {
				return "", false
			}
			v = c
		}
		j.keyBuf = types.AppendKey(j.keyBuf, v)
	}
	return string(j.keyBuf), true
}

// matches reports whether a joined row passes the residual conditions.
func (j *joiner) matches(row []Value) bool {
	for _, f := range j.residual {
		if !f(row).Bool() {
			return false
		}
	}
	return true
}

func (j *joiner) combine(l, r []Value) []Value {
	row := make([]Value, j.nl+j.nr)
	copy(row, l)
	copy(row[j.nl:], r)
	return row
}

// event reads one event for either side and appends the joined rows.
func (j *joiner) event(e *Event, left *sourceReader, out []Change) []Change {
	if j.unsorted {
		j.sortLoaded()
	}
	if j.right.matches(e) {
		for _, c := range j.right.read(e, nil) {
			switch {
			case j.j.Tables:
				out = j.tableChange(c, left.rows[c.Key], true, out)
			case !j.j.StreamTable() && c.Op == Insert:
				out = j.streamRow(1, c, out)
			}
		}
	}
	if left.matches(e) {
		for _, c := range left.read(e, nil) {
			switch {
			case j.j.Tables:
				out = j.tableChange(c, j.right.rows[c.Key], false, out)
			case j.j.StreamTable():
				out = j.lookup(c, out)
			default:
				out = j.streamRow(0, c, out)
			}
		}
	}
	return out
}

// tableChange turns a change of one table of a table–table join into the
// change of the joined row with the same key; other is the other table's
// current row for that key, and right says which side c comes from.
func (j *joiner) tableChange(c Change, other []Value, right bool, out []Change) []Change {
	var before, after []Value
	switch c.Op {
	case Insert:
		after = c.Row
	case Update:
		before, after = c.Old, c.Row
	case Delete:
		before = c.Row
	}
	// joined returns the joined row for one version of c's row, and
	// whether that version is part of it.
	joined := func(side []Value) ([]Value, bool) {
		l, r := side, other
		if right {
			l, r = other, side
		}
		if l != nil && r != nil && len(j.residual) > 0 && !j.matches(j.combine(l, r)) {
			// Planning allows conditions besides the keys for INNER,
			// LEFT and RIGHT joins only.
			switch j.j.Kind {
			case parse.JoinLeft:
				r = nil
			case parse.JoinRight:
				l = nil
			default:
				return nil, false
			}
		}
		switch j.j.Kind {
		case parse.JoinInner:
			if l == nil || r == nil {
				return nil, false
			}
		case parse.JoinLeft:
			if l == nil {
				return nil, false
			}
		case parse.JoinRight:
			if r == nil {
				return nil, false
			}
		default:
			if l == nil && r == nil {
				return nil, false
			}
		}
		if right {
			return j.combine(l, r), r != nil
		}
		return j.combine(l, r), l != nil
	}
	old, oldIn := joined(before)
	now, nowIn := joined(after)
	ch := Change{Key: c.Key, Time: c.Time, Offset: c.Offset}
	switch {
	case old == nil && now == nil, !oldIn && !nowIn:
		// Neither version of c's row joins: the other side's row with
		// NULLs stays as it was.
		return out
	case old == nil:
		ch.Op, ch.Row = Insert, now
	case now == nil:
		ch.Op, ch.Row = Delete, old
	default:
		ch.Op, ch.Row, ch.Old = Update, now, old
	}
	return append(out, ch)
}

func (j *joiner) lookup(c Change, out []Change) []Change {
	var match []Value
	if k, ok := j.key(j.leftKeys, c.Row); ok {
		match = j.right.rows[k]
	}
	if match != nil && len(j.residual) > 0 {
		row := j.combine(c.Row, match)
		if j.matches(row) {
			c.Row = row
			return append(out, c)
		}
		match = nil
	}
	if match == nil && j.j.Kind != parse.JoinLeft {
		return out
	}
	c.Row = j.combine(c.Row, match)
	return append(out, c)
}

// streamRow buffers a row of side s (0 left, 1 right) and joins it with
// the other side's buffered rows.
func (j *joiner) streamRow(s int, c Change, out []Change) []Change {
	within := j.j.Within.Milliseconds()
	if h := j.horizon(); c.Time < h {
		j.log.addLate(fmt.Sprintf("position %d: join row at %v is older than the join's horizon %v (stream time %v minus WITHIN and GRACE PERIOD)",
			c.Offset, types.NewTimestamp(c.Time), types.NewTimestamp(h), types.NewTimestamp(j.maxTime)))
		return out
	}
	k, ok := j.key([][]Eval{j.leftKeys, j.rightKeys}[s], c.Row)
	if !ok {
		// A NULL key matches nothing: an outer join emits the row now.
		if j.outer[s] {
			out = append(out, j.unmatched(s, c.Row, c.Time, c.Offset))
		}
		return j.advance(c.Time, out)
	}
	matched := false
	h := j.horizon()
	others := j.buf[1-s][k]
	for i := range others {
		o := &others[i]
		// A row older than the horizon has expired, whether or not
		// expire, which goes in ROWTIME order, dropped it yet.
		if o.t < h {
			continue
		}
		if d := o.t - c.Time; d >= -within && d <= within {
			l, r := c.Row, o.row
			if s == 1 {
				l, r = o.row, c.Row
			}
			out = append(out, Change{Op: Insert, Row: j.combine(l, r), Time: max(c.Time, o.t), Offset: c.Offset})
			matched = true
			if !o.matched && j.outer[1-s] {
				j.dirty[bufKey(1-s, o.off)] = true
			}
			o.matched = true
		}
	}
	j.buf[s][k] = append(j.buf[s][k], bufRow{t: c.Time, off: c.Offset, row: c.Row, matched: matched})
	ref := bufRef{key: k, t: c.Time, off: c.Offset}
	i, _ := slices.BinarySearchFunc(j.order[s], ref, cmpRef)
	j.order[s] = slices.Insert(j.order[s], i, ref)
	j.dirty[bufKey(s, c.Offset)] = true
	return j.advance(c.Time, out)
}

func cmpRef(a, b bufRef) int {
	if a.t != b.t {
		return cmp.Compare(a.t, b.t)
	}
	return cmp.Compare(a.off, b.off)
}

// horizon is the oldest ROWTIME a stream–stream join still joins.
func (j *joiner) horizon() int64 {
	return j.maxTime - j.j.Within.Milliseconds() - j.j.Grace.Milliseconds()
}

// unmatched returns the insert of a row of side s joined with NULLs.
func (j *joiner) unmatched(s int, row []Value, t, off int64) Change {
	l, r := row, []Value(nil)
	if s == 1 {
		l, r = nil, row
	}
	return Change{Op: Insert, Row: j.combine(l, r), Time: t, Offset: off}
}

func bufKey(s int, off int64) string {
	return string(binary.BigEndian.AppendUint64([]byte{"LR"[s]}, uint64(off)))
}

// watermark moves a stream–stream join's stream time to t (an idle
// timeout) if it is behind, and returns the unmatched rows of an outer
// join that this expires.
func (j *joiner) watermark(t int64) []Change {
	if j.j.Within == 0 {
		return nil
	}
	if j.unsorted {
		j.sortLoaded()
	}
	return j.advance(t, nil)
}

// advance moves stream time to t if it is behind and drops the buffered
// rows older than the horizon, in (ROWTIME, offset) order; an outer join
// emits those of its kept sides that never matched, in that order.
func (j *joiner) advance(t int64, out []Change) []Change {
	if t <= j.maxTime {
		return out
	}
	j.maxTime, j.metaDirty = t, true
	h := j.horizon()
	type gone struct {
		s   int
		ref bufRef
		row []Value
	}
	var emit []gone
	for s := range 2 {
		n := 0
		for _, ref := range j.order[s] {
			if ref.t >= h {
				break
			}
			n++
			rows := j.buf[s][ref.key]
			if i := slices.IndexFunc(rows, func(b bufRow) bool { return b.off == ref.off }); i >= 0 {
				if j.outer[s] && !rows[i].matched {
					emit = append(emit, gone{s, ref, rows[i].row})
				}
				rows = slices.Delete(rows, i, i+1)
			}
			if len(rows) == 0 {
				delete(j.buf[s], ref.key)
			} else {
				j.buf[s][ref.key] = rows
			}
			j.dirty[bufKey(s, ref.off)] = true
		}
		j.order[s] = slices.Delete(j.order[s], 0, n)
	}
	slices.SortFunc(emit, func(a, b gone) int { return cmpRef(a.ref, b.ref) })
	for _, g := range emit {
		out = append(out, j.unmatched(g.s, g.row, g.ref.t, g.ref.off))
	}
	return out
}

// save reports the right table's rows ('r' + key) and the buffered rows
// ('L' or 'R' + offset) changed since the last save.
func (j *joiner) save(put func(string, []byte)) {
	if r := j.right; r.rows != nil {
		for _, k := range sortedKeys(r.dirty) {
			if row, ok := r.rows[k]; ok {
				put("r"+k, types.AppendRow(nil, row))
			} else {
				put("r"+k, nil)
			}
		}
		clear(r.dirty)
	}
	if j.metaDirty {
		put("j", types.AppendRow(nil, []Value{types.NewInt(j.maxTime)}))
		j.metaDirty = false
	}
	// A buffered row is saved with whether it matched.
	live := map[string][]Value{}
	for s := range 2 {
		for _, rows := range j.buf[s] {
			for _, b := range rows {
				live[bufKey(s, b.off)] = append(slices.Clip(b.row), types.NewBool(b.matched))
			}
		}
	}
	for _, k := range sortedKeys(j.dirty) {
		if row, ok := live[k]; ok {
			put(k, types.AppendRow(nil, row))
		} else {
			put(k, nil)
		}
	}
	clear(j.dirty)
}

// load restores one saved entry: 'r' a row of the right table, 'j' the
// stream time of a stream–stream join, 'L' or 'R' a buffered row.
func (j *joiner) load(key string, row []Value, rowtime int) error {
	switch key[0] {
	case 'r':
		if j.right.rows == nil {
			return types.ErrCorrupt
		}
		j.right.rows[key[1:]] = row
	case 'j':
		if len(row) != 1 {
			return types.ErrCorrupt
		}
		j.maxTime = max(j.maxTime, row[0].I)
	case 'L', 'R':
		s, f, width := 0, j.leftKeys, j.nl
		if key[0] == 'R' {
			s, f, width = 1, j.rightKeys, j.nr
			rowtime = len(j.j.Right.Columns) + plan.PseudoRowtime
		}
		if len(key) != 9 || len(row) != width && len(row) != width+1 {
			return types.ErrCorrupt
		}
		matched := false
		if len(row) == width+1 { // saved with whether it matched
			matched, row = row[width].Bool(), row[:width]
		}
		k, ok := j.key(f, row)
		if !ok {
			return nil
		}
		off := int64(binary.BigEndian.Uint64([]byte(key[1:])))
		t := row[rowtime].I
		j.buf[s][k] = append(j.buf[s][k], bufRow{t: t, off: off, row: row, matched: matched})
		j.order[s] = append(j.order[s], bufRef{key: k, t: t, off: off})
		j.maxTime = max(j.maxTime, t)
		j.unsorted = true
	}
	return nil
}

// sortLoaded orders the restored rows by (ROWTIME, offset).
func (j *joiner) sortLoaded() {
	for s := range 2 {
		slices.SortFunc(j.order[s], cmpRef)
	}
	j.unsorted = false
}
