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
//
// A chain of joins (a stream or a table, then tables) is one link per
// JOIN: a stream row looks each table up in turn; a change of any table
// recomputes the chain's row for its key, as every ON matches PRIMARY
// KEYs.
type joiner struct {
	*link // the first join
	links []*link
	log   *ErrorLog
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
	// unsorted: rows were loaded, and the orders need sorting.
	unsorted bool
}

// link is one JOIN of a chain.
type link struct {
	j                   *plan.Join
	right               *sourceReader
	leftKeys, rightKeys []Eval
	// keyTypes are the types each pair of keys is compared in: the
	// table's key type, or the keys' common type for a stream–stream join.
	keyTypes []*types.Type
	residual []Eval
	// nl is the width of the rows joined before, nr of the right row.
	nl, nr int
	keyBuf []byte
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
	j := &joiner{dirty: map[string]bool{}, log: log, maxTime: -1 << 62}
	for i, pj := range q.Joins {
		end := len(q.Input)
		if i+1 < len(q.Joins) {
			end = q.Joins[i+1].RightStart
		}
		j.links = append(j.links, newLink(pj, end, log))
	}
	j.link = j.links[0]
	if !q.Join.Right.Table {
		k := q.Join.Kind
		j.outer = [2]bool{k == parse.JoinLeft || k == parse.JoinFull, k == parse.JoinRight || k == parse.JoinFull}
	}
	j.buf[0], j.buf[1] = map[string][]bufRow{}, map[string][]bufRow{}
	return j
}

// newLink compiles a join whose right row ends at end in the input row.
func newLink(pj *plan.Join, end int, log *ErrorLog) *link {
	l := &link{j: pj, right: newSourceReader(pj.Right, log), nl: pj.RightStart, nr: end - pj.RightStart}
	for i, le := range pj.LeftKeys {
		re := pj.RightKeys[i]
		l.leftKeys, l.rightKeys = append(l.leftKeys, Compile(le, log)), append(l.rightKeys, Compile(re, log))
		t := re.T
		if !pj.Right.Table {
			switch {
			case le.T.Kind == types.Timestamp || re.T.Kind == types.Timestamp:
				t = types.TimestampT
			default:
				if c, ok := fn.Common(le.T, re.T); ok {
					t = c
				}
			}
		}
		l.keyTypes = append(l.keyTypes, t)
	}
	for _, e := range pj.Residual {
		l.residual = append(l.residual, Compile(e, log))
	}
	return l
}

// key returns the join key of a row of one side (fs are its key
// expressions): the keys' encodings one after another, which is one
// table key for a join with a table. A NULL key matches nothing.
func (j *link) key(fs []Eval, row []Value) (string, bool) {
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
func (j *link) matches(row []Value) bool {
	for _, f := range j.residual {
		if !f(row).Bool() {
			return false
		}
	}
	return true
}

func (j *link) combine(l, r []Value) []Value {
	row := make([]Value, j.nl+j.nr)
	copy(row, l)
	copy(row[j.nl:], r)
	return row
}

// event reads one event for any source and appends the joined rows.
func (j *joiner) event(e *Event, left *sourceReader, out []Change) []Change {
	if j.unsorted {
		j.sortLoaded()
	}
	for i, l := range j.links {
		if !l.right.matches(e) {
			continue
		}
		for _, c := range l.right.read(e, nil) {
			switch {
			case l.j.Tables:
				out = j.tableChange(i+1, c, left, out)
			case !l.j.StreamTable() && c.Op == Insert:
				out = j.streamRow(1, c, out)
			}
		}
	}
	if left.matches(e) {
		for _, c := range left.read(e, nil) {
			switch {
			case j.j.Tables:
				out = j.tableChange(0, c, left, out)
			case j.j.StreamTable():
				out = j.lookup(c, out)
			default:
				out = j.streamRow(0, c, out)
			}
		}
	}
	return out
}

// tableChange turns a change of table t of a chain of table–table joins
// (0 the left table, i the right table of join i-1) into the change of
// the joined row with the same key.
func (j *joiner) tableChange(t int, c Change, left *sourceReader, out []Change) []Change {
	var before, after []Value
	switch c.Op {
	case Insert:
		after = c.Row
	case Update:
		before, after = c.Old, c.Row
	case Delete:
		before = c.Row
	}
	old, oldIn := j.chain(t, before, c.Key, left)
	now, nowIn := j.chain(t, after, c.Key, left)
	ch := Change{Key: c.Key, Time: c.Time, Offset: c.Offset}
	switch {
	case old == nil && now == nil, !oldIn && !nowIn:
		// Neither version of c's row joins: the rest of the chain's row
		// (with NULLs for table t) stays as it was.
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

// chain returns the joined row of the tables' rows with key k, taking
// row (nil: none) as table t's, and whether that row is part of it. As
// every ON matches PRIMARY KEYs, the chain has at most one row per key
// (planning allows RIGHT and FULL for the first join only, and residual
// conditions not with FULL).
func (j *joiner) chain(t int, row []Value, k string, left *sourceReader) ([]Value, bool) {
	get := func(i int) []Value {
		switch {
		case i == t:
			return row
		case i == 0:
			return left.rows[k]
		}
		return j.links[i-1].right.rows[k]
	}
	acc := get(0)
	in := t == 0 && acc != nil
	for i, l := range j.links {
		r := get(i + 1)
		var joined []Value
		if acc != nil && r != nil {
			// The left key is a PRIMARY KEY of a table joined before:
			// NULL (no match) when that table has no row in acc.
			if lk, ok := l.key(l.leftKeys, acc); ok && lk == k {
				joined = l.combine(acc, r)
				if !l.matches(joined) {
					joined = nil
				}
			}
		}
		switch {
		case joined != nil:
			acc = joined
		case l.j.Kind == parse.JoinInner,
			l.j.Kind == parse.JoinLeft && acc == nil,
			l.j.Kind == parse.JoinRight && r == nil,
			l.j.Kind == parse.JoinFull && acc == nil && r == nil:
			return nil, false
		case l.j.Kind == parse.JoinLeft, l.j.Kind == parse.JoinFull && acc != nil:
			acc = l.combine(acc, nil)
			r = nil
		default: // RIGHT or FULL, the right row alone
			acc = l.combine(nil, r)
			in = false
		}
		if i+1 == t {
			in = r != nil
		}
	}
	return acc, in
}

// rows returns the current rows of a chain of table–table joins, in key
// order, as inserts.
func (j *joiner) rows(left *sourceReader) []Change {
	keys := map[string]bool{}
	tables := []*sourceReader{left}
	for _, l := range j.links {
		tables = append(tables, l.right)
	}
	for _, r := range tables {
		for k := range r.rows {
			keys[k] = true
		}
	}
	var out []Change
	for _, k := range sortedKeys(keys) {
		row, _ := j.chain(-1, nil, k, left)
		if row == nil {
			continue
		}
		c := Change{Op: Insert, Row: row, Key: k}
		// The newest of the joined rows' ROWTIMEs and offsets.
		start := 0
		for i, r := range tables {
			if i > 0 {
				start = j.links[i-1].j.RightStart
			}
			if tr := r.rows[k]; tr != nil && row[start+len(r.src.Columns)+plan.PseudoRowoffset].I == tr[len(r.src.Columns)+plan.PseudoRowoffset].I {
				c.Offset = max(c.Offset, tr[len(r.src.Columns)+plan.PseudoRowoffset].I)
				c.Time = max(c.Time, tr[len(r.src.Columns)+plan.PseudoRowtime].I)
			}
		}
		out = append(out, c)
	}
	return out
}

// lookup joins a stream row with the tables of the chain in turn.
func (j *joiner) lookup(c Change, out []Change) []Change {
	acc := c.Row
	for _, l := range j.links {
		if k, ok := l.key(l.leftKeys, acc); ok {
			if match := l.right.rows[k]; match != nil {
				if row := l.combine(acc, match); l.matches(row) {
					acc = row
					continue
				}
			}
		}
		if l.j.Kind != parse.JoinLeft {
			return out
		}
		acc = l.combine(acc, nil)
	}
	c.Row = acc
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
	for i, l := range j.links {
		r := l.right
		if r.rows == nil {
			continue
		}
		prefix := "r"
		if i > 0 {
			prefix = string([]byte{'u', byte(i)}) // planning allows at most 255 joins
		}
		for _, k := range sortedKeys(r.dirty) {
			if row, ok := r.rows[k]; ok {
				put(prefix+k, types.AppendRow(nil, row))
			} else {
				put(prefix+k, nil)
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
	case 'u':
		if len(key) < 2 || int(key[1]) >= len(j.links) || key[1] == 0 || j.links[key[1]].right.rows == nil {
			return types.ErrCorrupt
		}
		j.links[key[1]].right.rows[key[2:]] = row
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
