package exec

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/fjord-data/fjord/streamsql/internal/fn"
	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// aggregator groups rows, folds them into accumulators, and emits the
// aggregate rows' changelog: an insert for a new group, an update when its
// row changes, and a delete when HAVING stops holding or every row of the
// group was retracted. Windowed groups close when stream time passes their
// end plus the grace period (EMIT FINAL emits then), and are dropped when
// it passes their end plus the retention.
type aggregator struct {
	q       *plan.Query
	keys    []Eval
	args    [][]Eval
	having  Eval
	project []Eval
	win     *plan.Window
	final   bool
	rowtime int
	// rightOff is where the right table's ROWOFFSET sits in a joined
	// row of a table–table join, or -1.
	rightOff int
	log      *ErrorLog

	groups   map[string]*group
	sessions map[string][]*group // session windows: key → sessions by start
	touched  []*group            // in first-touch order; group.touched marks them
	dirty    map[string]bool
	ends     []int64 // distinct window ends with open groups, sorted
	byEnd    map[int64]map[string]*group
	// streamTime is the largest ROWTIME seen (or the idle watermark).
	streamTime int64
	closedEnd  int64 // windows ending at or before this are closed
	argBuf     []Value
	keyBuf     []Value
	idBuf      []byte
	rowBuf     []Value  // the aggregate row, before projection
	encBuf     []byte   // scratch for encoding groups' state (Save)
	decBuf     []byte   // scratch for decoding groups kept encoded
	pending    []Change // deletes of merged sessions, emitted at the next flush
	// expired lists the ids (Change.Key) of the emitted windows that the
	// last process or watermark dropped past their retention.
	expired []string
	// store, when set (Pipeline.KeepEncoded, unwindowed only), holds every
	// group encoded; groups holds those decoded, at most maxHot between
	// batches, and a batch decodes the cold groups it touches.
	store  *GroupStore
	maxHot int
}

type group struct {
	id       string
	keyVals  []Value
	ws, we   int64
	accs     []fn.Accumulator
	n        int64   // rows in the group
	emitted  []Value // the output row last emitted, nil if none
	lastTime int64
	lastOff  int64
	closed   bool
	touched  bool // in aggregator.touched
	dropped  bool // merged into another session
}

func newAggregator(q *plan.Query, log *ErrorLog) *aggregator {
	a := &aggregator{q: q, win: q.Agg.Window, final: q.Emit == parse.EmitFinal, log: log,
		rowtime: rowtimeIndex(q.Source), groups: map[string]*group{}, sessions: map[string][]*group{},
		dirty: map[string]bool{}, byEnd: map[int64]map[string]*group{},
		streamTime: -1 << 62, closedEnd: -1 << 62, rightOff: -1}
	if j := q.Join; j != nil && j.Tables {
		a.rightOff = j.RightStart + len(j.Right.Columns) + plan.PseudoRowoffset
	}
	for _, k := range q.Agg.Keys {
		a.keys = append(a.keys, Compile(k, log))
	}
	for _, c := range q.Agg.Calls {
		var args []Eval
		for _, x := range c.Args {
			args = append(args, Compile(x, log))
		}
		a.args = append(a.args, args)
	}
	if q.Having != nil {
		a.having = Compile(q.Having, log)
	}
	for _, p := range q.Project {
		a.project = append(a.project, Compile(p, log))
	}
	return a
}

func (a *aggregator) newGroup(id string, key []Value, ws, we int64) *group {
	g := &group{id: id, keyVals: key, ws: ws, we: we}
	var ts []*types.Type
	for _, c := range a.q.Agg.Calls {
		ts = ts[:0]
		for _, x := range c.Args {
			ts = append(ts, x.T)
		}
		g.accs = append(g.accs, c.Fn.New(ts, a.q.Agg.Retract))
	}
	return g
}

func groupID(key []Value, ws int64, windowed bool) string {
	var b []byte
	for _, k := range key {
		b = types.AppendKey(b, k)
	}
	if windowed {
		b = binary.BigEndian.AppendUint64(b, uint64(ws))
	}
	return string(b)
}

// process folds a batch of input changes and returns the output changes.
func (a *aggregator) process(in []Change) []Change {
	a.expired = a.expired[:0]
	if a.store != nil {
		a.store.loaded()
	}
	a.spill()
	for _, c := range in {
		switch c.Op {
		case Insert:
			a.add(c.Row, c.Offset, 1)
		case Delete:
			a.add(c.Row, c.Offset, -1)
		case Update:
			a.add(c.Old, c.Offset, -1)
			a.add(c.Row, c.Offset, 1)
		}
	}
	out := a.flush(nil)
	return a.advance(out)
}

func (a *aggregator) add(row []Value, off int64, sign int64) {
	key := a.keyBuf[:0]
	for _, k := range a.keys {
		key = append(key, k(row))
	}
	a.keyBuf = key
	t := row[a.rowtime].I
	// Accumulators see the row's own offset, so that a retraction finds
	// what the row added.
	off = row[a.rowtime+plan.PseudoRowoffset-plan.PseudoRowtime].I
	if a.rightOff >= 0 {
		// A joined row of two tables is the version of both rows: the
		// later one names it (a row of one side alone has no offset on
		// the other).
		off = max(off, row[a.rightOff].I)
	}
	if a.win == nil {
		a.fold(a.group(key, 0, 0, false), row, off, sign, t)
		return
	}
	if a.win.Kind == parse.WindowSession {
		a.session(key, row, off, t)
		a.streamTime = max(a.streamTime, t)
		return
	}
	size, adv := a.win.Size.Milliseconds(), a.win.Advance.Milliseconds()
	if adv == 0 {
		adv = size
	}
	last := t - mod(t, adv)
	for ws := last - size + adv; ws <= last; ws += adv {
		we := ws + size
		if we+a.win.Grace.Milliseconds() <= a.streamTime {
			a.log.addLate(fmt.Sprintf("position %d: window [%v, %v) closed at stream time %v", off, types.NewTimestamp(ws), types.NewTimestamp(we), types.NewTimestamp(a.streamTime)))
			continue
		}
		a.fold(a.group(key, ws, we, true), row, off, sign, t)
	}
	a.streamTime = max(a.streamTime, t)
}

func mod(t, m int64) int64 {
	r := t % m
	if r < 0 {
		r += m
	}
	return r
}

// group finds or creates the group of key (a reused buffer) and window.
func (a *aggregator) group(key []Value, ws, we int64, windowed bool) *group {
	b := a.idBuf[:0]
	for _, k := range key {
		b = types.AppendKey(b, k)
	}
	if windowed {
		b = binary.BigEndian.AppendUint64(b, uint64(ws))
	}
	a.idBuf = b
	g := a.groups[string(b)]
	if g == nil {
		id := string(b)
		if a.store != nil {
			if val, ok := a.store.get(id); ok {
				return a.decode(id, val)
			}
		}
		g = a.newGroup(id, slices.Clone(key), ws, we)
		a.groups[id] = g
		if a.win != nil {
			a.trackEnd(g)
		}
	}
	return g
}

func (a *aggregator) trackEnd(g *group) {
	m := a.byEnd[g.we]
	if m == nil {
		m = map[string]*group{}
		a.byEnd[g.we] = m
		i, _ := slices.BinarySearch(a.ends, g.we)
		a.ends = slices.Insert(a.ends, i, g.we)
	}
	m[g.id] = g
}

func (a *aggregator) untrackEnd(g *group) {
	if m := a.byEnd[g.we]; m != nil {
		delete(m, g.id)
		if len(m) == 0 {
			delete(a.byEnd, g.we)
			if i, ok := slices.BinarySearch(a.ends, g.we); ok {
				a.ends = slices.Delete(a.ends, i, i+1)
			}
		}
	}
}

func (a *aggregator) fold(g *group, row []Value, off, sign, t int64) {
	for i, acc := range g.accs {
		args := a.argBuf[:0]
		for _, f := range a.args[i] {
			args = append(args, f(row))
		}
		a.argBuf = args
		if sign > 0 {
			acc.Add(args, off)
		} else {
			acc.Retract(args, off)
		}
	}
	g.n += sign
	g.lastTime, g.lastOff = max(g.lastTime, t), off
	if !g.touched {
		g.touched = true
		a.touched = append(a.touched, g)
		a.dirty[g.id] = true
	}
}

// session adds a row to the session of its key that it falls in, merging
// sessions that the row bridges.
func (a *aggregator) session(key []Value, row []Value, off, t int64) {
	gap, grace := a.win.Size.Milliseconds(), a.win.Grace.Milliseconds()
	kid := groupID(key, 0, false)
	list := a.sessions[kid]
	var hit []*group
	var keep []*group
	for _, s := range list {
		// A session closes when stream time passes its end plus the gap
		// and the grace period, and is final then: a row does not join
		// it (or bridge it with another).
		if !s.closed && s.we+gap+grace > a.streamTime && t >= s.ws-gap && t <= s.we+gap {
			hit = append(hit, s)
		} else {
			keep = append(keep, s)
		}
	}
	ws, we := t, t
	for _, s := range hit {
		ws, we = min(ws, s.ws), max(we, s.we)
	}
	// A row whose own session would be closed is late, even near an open
	// session. So a row near a closed session is late, or later than its
	// end (and then it joins open sessions, which start after that end,
	// or starts one): closed sessions never change or overlap another,
	// whether RETENTION still keeps them or not.
	if t+gap+grace <= a.streamTime {
		a.log.addLate(fmt.Sprintf("position %d: session at %v closed at stream time %v", off, types.NewTimestamp(t), types.NewTimestamp(a.streamTime)))
		return
	}
	g := a.newGroup(groupID(key, ws, true), slices.Clone(key), ws, we)
	for _, s := range hit {
		for i := range g.accs {
			g.accs[i].Merge(s.accs[i])
		}
		g.n += s.n
		g.lastTime, g.lastOff = max(g.lastTime, s.lastTime), max(g.lastOff, s.lastOff)
		a.dropSession(s, g.id)
	}
	if old := a.groups[g.id]; old != nil { // same start: carry what was emitted
		g.emitted = old.emitted
	}
	a.groups[g.id] = g
	a.trackEnd(g)
	keep = append(keep, g)
	slices.SortFunc(keep, func(x, y *group) int { return int(x.ws - y.ws) })
	a.sessions[kid] = keep
	a.fold(g, row, off, 1, t)
}

// dropSession removes a session merged into another; unless the merged one
// has the same id, its emitted row is deleted.
func (a *aggregator) dropSession(s *group, into string) {
	a.untrackEnd(s)
	s.dropped = true
	if s.id == into {
		return
	}
	delete(a.groups, s.id)
	a.dirty[s.id] = true
	if s.emitted != nil && !a.final {
		a.pending = append(a.pending, a.change(s, Delete, s.emitted, nil))
	}
}

// flush emits the changes of the groups touched since the last flush.
func (a *aggregator) flush(out []Change) []Change {
	out = append(out, a.pending...)
	a.pending = a.pending[:0]
	for _, g := range a.touched {
		g.touched = false
		if a.final || g.dropped {
			continue
		}
		out = a.emit(g, out)
	}
	clear(a.touched)
	a.touched = a.touched[:0]
	return out
}

// emit compares a group's output with what it emitted last.
func (a *aggregator) emit(g *group, out []Change) []Change {
	row := a.output(g)
	switch {
	case row == nil && g.emitted == nil:
		return a.forget(g, out)
	case row == nil:
		out = append(out, a.change(g, Delete, g.emitted, nil))
	case g.emitted == nil:
		out = append(out, a.change(g, Insert, row, nil))
	case !rowsEqual(row, g.emitted):
		out = append(out, a.change(g, Update, row, g.emitted))
	default:
		return out
	}
	g.emitted = row
	a.dirty[g.id] = true
	return a.forget(g, out)
}

// forget drops an unwindowed group that every row left.
func (a *aggregator) forget(g *group, out []Change) []Change {
	if g.n == 0 && a.win == nil && g.emitted == nil {
		delete(a.groups, g.id)
		a.dirty[g.id] = true
	}
	return out
}

func (a *aggregator) change(g *group, op ChangeOp, row, old []Value) Change {
	return Change{Op: op, Row: row, Old: old, Key: g.id, KeyVals: g.keyVals, Windowed: a.win != nil,
		WindowStart: g.ws, WindowEnd: g.we, Time: g.lastTime, Offset: g.lastOff}
}

// output computes the group's output row, or nil when the group is empty
// or HAVING does not hold.
func (a *aggregator) output(g *group) []Value {
	if g.n <= 0 {
		return nil
	}
	row := a.rowBuf[:0]
	row = append(row, g.keyVals...)
	for _, acc := range g.accs {
		row = append(row, acc.Result())
	}
	row = append(row, types.NewTimestamp(g.ws), types.NewTimestamp(g.we))
	a.rowBuf = row
	if a.having != nil && !a.having(row).Bool() {
		return nil
	}
	return projectRow(a.project, row)
}

func rowsEqual(x, y []Value) bool {
	return slices.EqualFunc(x, y, types.Equal)
}

// advance closes windows that stream time has passed (emitting final
// rows) and drops those past their retention.
func (a *aggregator) advance(out []Change) []Change {
	if a.win == nil {
		return out
	}
	grace, retention := a.win.Grace.Milliseconds(), a.win.Retention.Milliseconds()
	if a.win.Kind == parse.WindowSession {
		grace += a.win.Size.Milliseconds() // a session can grow until its gap has passed
		retention += a.win.Size.Milliseconds()
	}
	start, _ := slices.BinarySearch(a.ends, a.closedEnd+1)
	for _, end := range a.ends[start:] {
		if end+grace > a.streamTime {
			break
		}
		a.closedEnd = end
		for _, id := range sortedIDs(a.byEnd[end]) {
			g := a.byEnd[end][id]
			g.closed = true
			a.dirty[g.id] = true
			if a.final {
				if row := a.output(g); row != nil {
					out = append(out, a.change(g, Insert, row, nil))
					g.emitted = row
				}
			}
		}
	}
	for len(a.ends) > 0 && a.ends[0]+retention <= a.streamTime {
		m := a.byEnd[a.ends[0]]
		for _, id := range sortedIDs(m) {
			a.evict(m[id])
		}
	}
	return out
}

func sortedIDs(m map[string]*group) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (a *aggregator) evict(g *group) {
	if g.emitted != nil {
		a.expired = append(a.expired, g.id)
	}
	a.untrackEnd(g)
	delete(a.groups, g.id)
	a.dirty[g.id] = true
	if a.win.Kind == parse.WindowSession {
		kid := groupID(g.keyVals, 0, false)
		a.sessions[kid] = slices.DeleteFunc(a.sessions[kid], func(s *group) bool { return s == g })
		if len(a.sessions[kid]) == 0 {
			delete(a.sessions, kid)
		}
	}
}

// watermark moves stream time forward to t (an idle timeout) and returns
// what closing windows emits.
func (a *aggregator) watermark(t int64) []Change {
	a.expired = a.expired[:0]
	if t <= a.streamTime {
		return nil
	}
	a.streamTime = t
	a.dirty[metaKey] = true
	return a.advance(nil)
}

const metaKey = "\x00meta"

// decode restores a cold group from the store into groups. The encoding
// was written by encodeGroup or checked by Pipeline.Load, so an error is
// a bug.
func (a *aggregator) decode(id string, val string) *group {
	// The row encoding is an array's without its kind byte; decode it as
	// one from scratch (DecodeKey copies the strings it returns).
	a.decBuf = append(append(a.decBuf[:0], byte(types.Array)), val...)
	row, _, err := types.DecodeKey(a.decBuf)
	if err == nil {
		err = a.load(id, row.List())
	}
	if err != nil {
		panic(fmt.Sprintf("streamsql: decoding group %q kept encoded: %v", id, err))
	}
	return a.groups[id]
}

// spill drops decoded groups beyond maxHot, down to three quarters of it,
// so that a batch touching a few cold groups does not spill every time.
// Only clean groups are dropped: between a Save whose changes were
// published and the next batch, the store holds every group as it is.
func (a *aggregator) spill() {
	if a.store == nil || len(a.groups) <= a.maxHot || len(a.dirty) > 0 || len(a.store.staged) > 0 {
		return
	}
	target := a.maxHot - a.maxHot/4
	for id := range a.groups {
		if len(a.groups) <= target {
			break
		}
		delete(a.groups, id)
	}
}
