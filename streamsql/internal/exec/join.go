package exec

import (
	"encoding/binary"
	"slices"

	"github.com/fjord-data/fjord/streamsql/internal/fn"
	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// joiner joins the left stream's rows with the right source: a stream–
// table join looks up the table's current row by key (table changes emit
// nothing); a stream–stream join buffers both sides for WITHIN and emits
// each pair of rows with equal keys whose ROWTIMEs are that close, when
// the second of the two arrives, unless the first has expired by then
// (its ROWTIME is older than the newest one minus WITHIN).
type joiner struct {
	j                 *plan.Join
	right             *sourceReader
	leftKey, rightKey Eval
	// keyType is the type both keys are compared in: the table's key
	// type, or the keys' common type for a stream–stream join.
	keyType *types.Type
	nl, nr  int
	// Stream–stream buffers by key, and the arrival order for expiry.
	buf     [2]map[string][]bufRow
	fifo    [2][]bufRef
	maxTime int64
	dirty   map[string]bool // "L"/"R" + offset
	keyBuf  []byte
	// unsorted: rows were loaded, and the FIFOs need ordering by offset.
	unsorted bool
}

type bufRow struct {
	t, off int64
	row    []Value
}

type bufRef struct {
	key    string
	t, off int64
}

func newJoiner(q *plan.Query, log *ErrorLog) *joiner {
	j := &joiner{j: q.Join, right: newSourceReader(q.Join.Right, log), nl: q.Join.RightStart,
		nr: len(q.Input) - q.Join.RightStart, dirty: map[string]bool{}}
	j.leftKey, j.rightKey = Compile(q.Join.LeftKey, log), Compile(q.Join.RightKey, log)
	j.keyType = q.Join.RightKey.T
	if !q.Join.Right.Table {
		switch lt, rt := q.Join.LeftKey.T, q.Join.RightKey.T; {
		case lt.Kind == types.Timestamp || rt.Kind == types.Timestamp:
			j.keyType = types.TimestampT
		default:
			if t, ok := fn.Common(lt, rt); ok {
				j.keyType = t
			}
		}
	}
	j.buf[0], j.buf[1] = map[string][]bufRow{}, map[string][]bufRow{}
	return j
}

func (j *joiner) key(f Eval, row []Value) (string, bool) {
	v := f(row)
	if v.IsNull() {
		return "", false
	}
	// Equal values of different types (1 and 1.0, DECIMALs of different
	// scales) must have one key: convert to the key type, and a value the
	// key type cannot hold exactly matches nothing.
	if t := j.keyType; v.K != t.Kind || t.Kind == types.Decimal && int(v.Sc) != t.Scale {
		c, err := Cast(v, t)
		if err != nil || c.IsNull() || types.Compare(c, v) != 0 {
			return "", false
		}
		v = c
	}
	j.keyBuf = types.AppendKey(j.keyBuf[:0], v)
	return string(j.keyBuf), true
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
	joined := func(side []Value) []Value {
		l, r := side, other
		if right {
			l, r = other, side
		}
		switch j.j.Kind {
		case parse.JoinInner:
			if l == nil || r == nil {
				return nil
			}
		case parse.JoinLeft:
			if l == nil {
				return nil
			}
		case parse.JoinRight:
			if r == nil {
				return nil
			}
		default:
			if l == nil && r == nil {
				return nil
			}
		}
		return j.combine(l, r)
	}
	old, now := joined(before), joined(after)
	ch := Change{Key: c.Key, Time: c.Time, Offset: c.Offset}
	switch {
	case old == nil && now == nil:
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
	if k, ok := j.key(j.leftKey, c.Row); ok {
		match = j.right.rows[k]
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
	k, ok := j.key([]Eval{j.leftKey, j.rightKey}[s], c.Row)
	if !ok {
		return out
	}
	within := j.j.Within.Milliseconds()
	for _, o := range j.buf[1-s][k] {
		// A row older than the newest ROWTIME minus WITHIN has expired,
		// whether or not expire, which goes in arrival order, dropped it.
		if o.t < j.maxTime-within {
			continue
		}
		if d := o.t - c.Time; d >= -within && d <= within {
			l, r := c.Row, o.row
			if s == 1 {
				l, r = o.row, c.Row
			}
			out = append(out, Change{Op: Insert, Row: j.combine(l, r), Time: max(c.Time, o.t), Offset: c.Offset})
		}
	}
	j.buf[s][k] = append(j.buf[s][k], bufRow{t: c.Time, off: c.Offset, row: c.Row})
	j.fifo[s] = append(j.fifo[s], bufRef{key: k, t: c.Time, off: c.Offset})
	j.dirty[bufKey(s, c.Offset)] = true
	j.maxTime = max(j.maxTime, c.Time)
	j.expire(within)
	return out
}

func bufKey(s int, off int64) string {
	return string(binary.BigEndian.AppendUint64([]byte{"LR"[s]}, uint64(off)))
}

// expire drops buffered rows older than the newest ROWTIME minus WITHIN,
// in arrival order.
func (j *joiner) expire(within int64) {
	for s := range 2 {
		n := 0
		for _, ref := range j.fifo[s] {
			if ref.t >= j.maxTime-within {
				break
			}
			n++
			rows := j.buf[s][ref.key]
			rows = slices.DeleteFunc(rows, func(b bufRow) bool { return b.off == ref.off })
			if len(rows) == 0 {
				delete(j.buf[s], ref.key)
			} else {
				j.buf[s][ref.key] = rows
			}
			j.dirty[bufKey(s, ref.off)] = true
		}
		j.fifo[s] = j.fifo[s][n:]
	}
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
	live := map[string][]Value{}
	for s := range 2 {
		for _, rows := range j.buf[s] {
			for _, b := range rows {
				live[bufKey(s, b.off)] = b.row
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

// load restores one saved entry.
func (j *joiner) load(key string, row []Value, rowtime int) {
	switch key[0] {
	case 'r':
		j.right.rows[key[1:]] = row
	case 'L', 'R':
		s := 0
		f := j.leftKey
		if key[0] == 'R' {
			s, f = 1, j.rightKey
			rowtime = len(j.j.Right.Columns) + plan.PseudoRowtime
		}
		k, ok := j.key(f, row)
		if !ok {
			return
		}
		off := int64(binary.BigEndian.Uint64([]byte(key[1:])))
		t := row[rowtime].I
		j.buf[s][k] = append(j.buf[s][k], bufRow{t: t, off: off, row: row})
		j.fifo[s] = append(j.fifo[s], bufRef{key: k, t: t, off: off})
		j.maxTime = max(j.maxTime, t)
		j.unsorted = true
	}
}

// sortLoaded orders the restored FIFOs by offset (arrival order).
func (j *joiner) sortLoaded() {
	for s := range 2 {
		slices.SortFunc(j.fifo[s], func(a, b bufRef) int { return int(a.off - b.off) })
	}
	j.unsorted = false
}
