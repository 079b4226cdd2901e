package exec

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// Pipeline executes a push query over batches of events: decode, filter,
// aggregate or project, re-key, limit. It is not safe for concurrent use;
// one goroutine owns it.
type Pipeline struct {
	q         *plan.Query
	log       *ErrorLog
	reader    *sourceReader
	where     Eval
	agg       *aggregator
	project   []Eval
	partition Eval
	join      *joiner
	emitted   int64
	position  int64 // the last input position processed
	buf       []Change
}

// New returns a pipeline for a planned push query. Problems met while
// running are counted in log.
func New(q *plan.Query, log *ErrorLog) *Pipeline {
	p := &Pipeline{q: q, log: log, reader: newSourceReader(q.Source, log)}
	if q.Join != nil {
		p.join = newJoiner(q, log)
	}
	// Rows of a stream live until the batch is processed, unless a
	// stream–stream join buffers them.
	p.reader.reuse = !q.Source.Table && (q.Join == nil || q.Join.StreamTable())
	if q.Where != nil {
		p.where = Compile(q.Where, log)
	}
	if q.Agg != nil {
		p.agg = newAggregator(q, log)
	} else {
		for _, e := range q.Project {
			p.project = append(p.project, Compile(e, log))
		}
	}
	if q.PartitionBy != nil {
		p.partition = Compile(q.PartitionBy, log)
	}
	return p
}

// Process runs a batch of events (in position order) through the query
// and returns the output changes. The returned slice is reused by the next
// call.
func (p *Pipeline) Process(events []Event) []Change {
	in := p.buf[:0]
	p.reader.reset()
	for i := range events {
		if p.join != nil {
			in = p.join.event(&events[i], p.reader, in)
		} else {
			in = p.reader.read(&events[i], in)
		}
		p.position = max(p.position, events[i].Position)
	}
	out := p.output(in)
	p.buf = in[:0]
	return p.limit(out)
}

// output filters input rows and aggregates or projects them.
func (p *Pipeline) output(in []Change) []Change {
	if p.where != nil {
		in = filter(p.where, in)
	}
	if p.agg != nil {
		return p.agg.process(in)
	}
	if p.partition != nil {
		rekey(p.partition, in)
	}
	return project(p.project, in)
}

// Advance records that every event up to pos was considered (a
// checkpoint of a filtered subscription).
func (p *Pipeline) Advance(pos int64) { p.position = max(p.position, pos) }

// Position returns the last input position processed.
func (p *Pipeline) Position() int64 { return p.position }

// Watermark moves stream time to ms (milliseconds since the epoch) if it
// is behind, closing the windows that ends, and the WITHIN … GRACE PERIOD
// of a stream–stream join's rows; it returns their results.
func (p *Pipeline) Watermark(ms int64) []Change {
	var out []Change
	if p.join != nil {
		if in := p.join.watermark(ms); len(in) > 0 {
			out = append(out, p.output(in)...)
		}
	}
	if p.agg != nil {
		out = append(out, p.agg.watermark(ms)...)
	}
	return p.limit(out)
}

// Expired returns the keys (Change.Key) of the windowed rows that the last
// Process or Watermark dropped from the state past their RETENTION. No
// change is emitted for them; a materialized table drops them too. The
// slice is reused by the next call.
func (p *Pipeline) Expired() []string {
	if p.agg == nil {
		return nil
	}
	return p.agg.expired
}

// StreamTime returns the largest ROWTIME seen or watermark set.
func (p *Pipeline) StreamTime() int64 {
	t := p.aggTime()
	if j := p.join; j != nil && j.j.Within > 0 {
		t = max(t, j.maxTime)
	}
	return t
}

func (p *Pipeline) aggTime() int64 {
	if p.agg == nil {
		return 0
	}
	return p.agg.streamTime
}

// Done reports whether the query reached its LIMIT.
func (p *Pipeline) Done() bool { return p.q.Limit > 0 && p.emitted >= p.q.Limit }

func (p *Pipeline) limit(out []Change) []Change {
	if p.q.Limit == 0 {
		return out
	}
	if rest := p.q.Limit - p.emitted; int64(len(out)) > rest {
		out = out[:rest]
	}
	p.emitted += int64(len(out))
	return out
}

// Save reports the state changed since the last Save: put(key, value),
// with a nil value for a key to delete. Keys start with 'g' (groups), 's'
// (rows of a table source) or 'm' (stream time and counters).
func (p *Pipeline) Save(put func(key string, val []byte)) {
	meta := types.AppendRow(nil, []Value{types.NewInt(p.aggTime()), types.NewInt(p.emitted), types.NewInt(p.closedEnd())})
	put("m", meta)
	if r := p.reader; r.rows != nil {
		for _, k := range sortedKeys(r.dirty) {
			if row, ok := r.rows[k]; ok {
				put("s"+k, types.AppendRow(nil, row))
			} else {
				put("s"+k, nil)
			}
		}
		clear(r.dirty)
	}
	if p.join != nil {
		p.join.save(put)
	}
	if a := p.agg; a != nil {
		for _, id := range sortedKeys(a.dirty) {
			if id == metaKey {
				continue
			}
			var val []byte
			g, ok := a.groups[id]
			if ok {
				val, a.encBuf = encodeGroup(g, a.encBuf)
			}
			put("g"+id, val)
			if a.store != nil {
				a.store.stage(id, val, !ok)
			}
		}
		clear(a.dirty)
	}
}

func (p *Pipeline) closedEnd() int64 {
	if p.agg == nil {
		return 0
	}
	return p.agg.closedEnd
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Load restores one saved entry; call it for every entry before the
// first Process.
func (p *Pipeline) Load(key string, val []byte) error {
	if key == "" {
		return types.ErrCorrupt
	}
	row, _, err := types.DecodeRow(val)
	if err != nil {
		return fmt.Errorf("streamsql: state %q: %w", key, err)
	}
	switch key[0] {
	case 'm':
		if len(row) != 3 {
			return types.ErrCorrupt
		}
		p.emitted = row[1].I
		if p.agg != nil {
			p.agg.streamTime, p.agg.closedEnd = row[0].I, row[2].I
		}
	case 's':
		if p.reader.rows == nil {
			return fmt.Errorf("streamsql: state %q: not a table source", key)
		}
		p.reader.rows[key[1:]] = row
	case 'r', 'u', 'j', 'L', 'R':
		if p.join == nil {
			return fmt.Errorf("streamsql: state %q: not a join", key)
		}
		if err := p.join.load(key, row, rowtimeIndex(p.q.Source)); err != nil {
			return fmt.Errorf("streamsql: state %q: %w", key, err)
		}
	case 'g':
		if p.agg == nil {
			return fmt.Errorf("streamsql: state %q: not an aggregation", key)
		}
		id := key[1:]
		if err := p.agg.load(id, row); err != nil {
			return err
		}
		if s := p.agg.store; s != nil {
			s.load(id, val)
			if len(p.agg.groups) > p.agg.maxHot {
				delete(p.agg.groups, id)
			}
		}
	default:
		return fmt.Errorf("streamsql: unknown state key %q", key)
	}
	return nil
}

// Rows returns the current output rows of a query that makes a table (an
// aggregation, or a query over a table source), in key order; each change
// is an insert. With KeepEncoded, call it only between a published Save
// and the next Process.
func (p *Pipeline) Rows() []Change {
	if p.agg == nil {
		if p.reader.rows == nil {
			return nil
		}
		var in []Change
		if p.join != nil {
			in = p.join.rows(p.reader)
			if p.where != nil {
				in = filter(p.where, in)
			}
			return project(p.project, in)
		}
		for _, k := range sortedRowKeys(p.reader.rows) {
			row := p.reader.rows[k]
			off := row[len(p.q.Source.Columns)+plan.PseudoRowoffset].I
			in = append(in, Change{Op: Insert, Row: row, Key: k, Offset: off, Time: row[len(p.q.Source.Columns)+plan.PseudoRowtime].I})
		}
		if p.where != nil {
			in = filter(p.where, in)
		}
		return project(p.project, in)
	}
	if s := p.agg.store; s != nil {
		s.loaded()
		rows, err := s.Rows()
		if err != nil { // checked by Load or written by Save
			panic(err)
		}
		return rows
	}
	var out []Change
	for _, id := range sortedIDs(p.agg.groups) {
		g := p.agg.groups[id]
		if g.emitted != nil {
			out = append(out, p.agg.change(g, Insert, g.emitted, nil))
		}
	}
	return out
}

// KeepEncoded makes an unwindowed aggregation keep every group encoded in
// the returned GroupStore, with at most maxHot of them also decoded
// between batches; a batch decodes the cold groups it touches. Call it
// before Load. Save then stages what it writes in the store, and the
// caller must Publish the store once that state is committed, before the
// next Process. It returns nil for other queries, which keep their state
// decoded (windowed groups are indexed by window end and session).
func (p *Pipeline) KeepEncoded(maxHot int) *GroupStore {
	if p.agg == nil || p.agg.win != nil {
		return nil
	}
	if p.agg.store == nil {
		p.agg.store = newGroupStore()
	}
	p.agg.maxHot = max(maxHot, 0)
	return p.agg.store
}

// encodeGroup returns a group's state: types.AppendRow of [ws, we, n,
// lastTime, lastOff, closed, ARRAY keyVals, ARRAY emitted or NULL, each
// accumulator's State()], which aggregator.load reverses. It writes the
// encoding directly into scratch (returned for reuse, as a persistent
// query encodes every group it touched after each batch) and returns an
// exact-size copy, which the state store may keep.
func encodeGroup(g *group, scratch []byte) (val, buf []byte) {
	b := binary.AppendUvarint(scratch[:0], uint64(8+len(g.accs)))
	for _, i := range [...]int64{g.ws, g.we, g.n, g.lastTime, g.lastOff} {
		b = types.AppendKey(b, types.NewInt(i))
	}
	b = types.AppendKey(b, types.NewBool(g.closed))
	b = appendArray(b, g.keyVals)
	if g.emitted != nil {
		b = appendArray(b, g.emitted)
	} else {
		b = types.AppendKey(b, Value{})
	}
	for _, acc := range g.accs {
		b = types.AppendKey(b, acc.State())
	}
	return slices.Clone(b), b
}

// appendArray appends what types.AppendKey appends for types.NewArray(vs),
// without boxing vs in a Value.
func appendArray(b []byte, vs []Value) []byte {
	b = append(b, byte(types.Array))
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = types.AppendKey(b, v)
	}
	return b
}

func (a *aggregator) load(id string, row []Value) error {
	if len(row) != 8+len(a.q.Agg.Calls) {
		return fmt.Errorf("streamsql: group state has %d values, want %d: %w", len(row), 8+len(a.q.Agg.Calls), types.ErrCorrupt)
	}
	g := a.newGroup(id, row[6].List(), row[0].I, row[1].I)
	g.n, g.lastTime, g.lastOff, g.closed = row[2].I, row[3].I, row[4].I, row[5].Bool()
	if !row[7].IsNull() {
		g.emitted = row[7].List()
	}
	for i, acc := range g.accs {
		if err := acc.Load(row[8+i]); err != nil {
			return err
		}
	}
	a.groups[id] = g
	if a.win != nil {
		a.trackEnd(g)
		if a.win.Kind == parse.WindowSession {
			kid := groupID(g.keyVals, 0, false)
			a.sessions[kid] = append(a.sessions[kid], g)
			slices.SortFunc(a.sessions[kid], func(x, y *group) int { return int(x.ws - y.ws) })
		}
	}
	return nil
}

func sortedRowKeys(m map[string][]Value) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
