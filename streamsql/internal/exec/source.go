package exec

import (
	"bytes"
	"fmt"

	"github.com/fjord-data/fjord/streamsql/internal/plan"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// Event is an event of the store, as a source reads it.
type Event struct {
	Data     []byte
	Stream   string
	Version  int64
	Position int64
	Type     string
	Time     int64 // commit time, milliseconds since the epoch
}

// sourceReader turns events into source rows. A table source keeps the
// latest row of each key, so that an event for a known key is an update
// and an event whose data is JSON null deletes the key.
type sourceReader struct {
	src   *plan.Source
	dec   *types.Decoder
	log   *ErrorLog
	errs  []types.DecodeError
	rows  map[string][]Value // table sources: key → row
	dirty map[string]bool
	// byStream maps a stream to the key of its last row (table sources),
	// for tombstones; rebuilt from rows when nil.
	byStream map[string]string
	// arena holds the rows of the current batch when nothing keeps rows
	// beyond it (a stream source outside a stream–stream join); reset
	// resets it.
	arena  []Value
	reuse  bool
	arenaN int
}

// reset starts a new batch: rows handed out before may be overwritten.
func (r *sourceReader) reset() { r.arenaN = 0 }

// newRow returns a zeroed row of n values.
func (r *sourceReader) newRow(n int) []Value {
	if !r.reuse {
		return make([]Value, n)
	}
	if r.arenaN+n > len(r.arena) {
		r.arena = make([]Value, max(2*len(r.arena), 512*n))
		r.arenaN = 0
	}
	row := r.arena[r.arenaN : r.arenaN+n : r.arenaN+n]
	r.arenaN += n
	clear(row)
	return row
}

func newSourceReader(src *plan.Source, log *ErrorLog) *sourceReader {
	r := &sourceReader{src: src, dec: types.NewDecoder(src.Columns), log: log}
	if src.Table {
		r.rows, r.dirty = map[string][]Value{}, map[string]bool{}
	}
	return r
}

// matches reports whether the event belongs to the source (the store's
// filters can be wider than the source: a stream prefix).
func (r *sourceReader) matches(e *Event) bool {
	in := r.src.Input
	if in.Stream != "" && e.Stream != in.Stream {
		return false
	}
	if in.Category != "" && !(len(e.Stream) > len(in.Category) && e.Stream[len(in.Category)] == '-' && e.Stream[:len(in.Category)] == in.Category) {
		return false
	}
	if len(in.EventTypes) == 0 {
		return true
	}
	for _, t := range in.EventTypes {
		if t == e.Type {
			return true
		}
	}
	return false
}

// read appends the changes an event makes to out.
func (r *sourceReader) read(e *Event, out []Change) []Change {
	if !r.matches(e) {
		return out
	}
	n := len(r.src.Columns)
	row := r.newRow(n + plan.NumPseudo)
	tombstone := r.src.Table && bytes.Equal(bytes.TrimSpace(e.Data), []byte("null"))
	if !tombstone {
		r.errs = r.dec.Decode(e.Data, row, r.errs[:0])
		for _, err := range r.errs {
			r.log.addDecode(fmt.Sprintf("position %d (%s v%d): %v", e.Position, e.Stream, e.Version, err))
		}
	}
	t := e.Time
	if tc := r.src.TimestampCol; tc >= 0 && !row[tc].IsNull() {
		t = row[tc].I
	}
	row[n+plan.PseudoRowtime] = types.NewTimestamp(t)
	row[n+plan.PseudoRowoffset] = types.NewInt(e.Position)
	row[n+plan.PseudoStreamID] = types.NewString(e.Stream)
	row[n+plan.PseudoStreamVersion] = types.NewInt(e.Version)
	row[n+plan.PseudoEventType] = types.NewString(e.Type)
	if !r.src.Table {
		return append(out, Change{Op: Insert, Row: row, Time: t, Offset: e.Position})
	}
	if r.byStream == nil {
		r.indexStreams()
	}
	var kb []byte
	if tombstone {
		// A tombstone names its key through its stream: the key of the
		// stream's last row.
		k, ok := r.keyOfStream(e.Stream)
		if !ok {
			return out
		}
		kb = []byte(k)
	} else {
		key := row[r.src.Key]
		if key.IsNull() {
			r.log.addDecode(fmt.Sprintf("position %d (%s v%d): table %s: the key column %s is NULL", e.Position, e.Stream, e.Version, r.src.Name, r.src.Columns[r.src.Key].Name))
			return out
		}
		kb = types.AppendKey(nil, key)
	}
	k := string(kb)
	old, had := r.rows[k]
	r.dirty[k] = true
	if tombstone {
		delete(r.rows, k)
		delete(r.byStream, e.Stream)
		return append(out, Change{Op: Delete, Row: old, Key: k, Time: t, Offset: e.Position})
	}
	if had {
		if prev := old[len(r.src.Columns)+plan.PseudoStreamID].S; prev != e.Stream && r.byStream[prev] == k {
			delete(r.byStream, prev)
		}
	}
	r.rows[k] = row
	r.byStream[e.Stream] = k
	if had {
		return append(out, Change{Op: Update, Row: row, Old: old, Key: k, Time: t, Offset: e.Position})
	}
	return append(out, Change{Op: Insert, Row: row, Key: k, Time: t, Offset: e.Position})
}

func (r *sourceReader) keyOfStream(stream string) (string, bool) {
	k, ok := r.byStream[stream]
	return k, ok
}

// indexStreams rebuilds byStream from the rows (after a restore): a
// stream whose rows have several keys names the key of its latest row.
func (r *sourceReader) indexStreams() {
	r.byStream = make(map[string]string, len(r.rows))
	sid, oid := len(r.src.Columns)+plan.PseudoStreamID, len(r.src.Columns)+plan.PseudoRowoffset
	for k, row := range r.rows {
		s := row[sid].S
		if prev, ok := r.byStream[s]; ok && r.rows[prev][oid].I > row[oid].I {
			continue
		}
		r.byStream[s] = k
	}
}
