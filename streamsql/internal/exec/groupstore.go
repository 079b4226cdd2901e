package exec

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// GroupStore keeps every group of a persistent, unwindowed aggregation
// encoded (the bytes Save writes, about 100 B a group instead of several
// hundred decoded), as of the last Publish. The pipeline decodes a group
// when a batch touches it and keeps at most a bounded number decoded; the
// rest live only here (and in the state store). Pull queries read the
// aggregation's rows from here, so that the rows are not held a second
// time.
//
// The encodings of one Publish share one allocation (each value is a
// substring of it), so that they do not fragment the heap among the
// batch's garbage. A shared allocation lives while any of its groups is
// unchanged; when the bytes of replaced or deleted groups outgrow the
// live ones, the store copies the live ones into fresh allocations.
//
// One goroutine, the pipeline's, writes (Save stages, Publish applies);
// any number may read concurrently.
type GroupStore struct {
	mu     sync.RWMutex
	groups map[string]string // group id → encodeGroup's bytes
	// staged is what Save wrote since the last Publish, its encodings one
	// after another in buf; only the writer touches them.
	staged []stagedGroup
	buf    []byte
	// live is the size of the encodings in groups; dead bounds the bytes
	// of replaced or deleted ones that shared allocations may still hold.
	live, dead int
	loading    bool // load staged groups; loaded publishes them
}

type stagedGroup struct {
	id       string
	from, to int // the encoding, in buf
	deleted  bool
}

// minCompact is the fewest dead bytes worth a compaction.
const minCompact = 4 << 20

func newGroupStore() *GroupStore { return &GroupStore{groups: map[string]string{}} }

// stage records a group's encoding, or its deletion when val is nil, for
// the next Publish.
func (s *GroupStore) stage(id string, val []byte, deleted bool) {
	from := len(s.buf)
	s.buf = append(s.buf, val...)
	s.staged = append(s.staged, stagedGroup{id: id, from: from, to: len(s.buf), deleted: deleted})
}

// Publish makes what the last Save wrote visible to readers. Call it once
// the state is committed, under whatever lock orders the readers' view
// with the changes of that batch.
func (s *GroupStore) Publish() {
	if len(s.staged) == 0 {
		return
	}
	chunk := string(s.buf)
	s.mu.Lock()
	for _, e := range s.staged {
		old, had := s.groups[e.id]
		if had {
			s.live -= len(old)
			s.dead += len(old)
		}
		if e.deleted {
			delete(s.groups, e.id)
		} else {
			s.groups[e.id] = chunk[e.from:e.to]
			s.live += e.to - e.from
		}
	}
	if s.dead > minCompact && s.dead > s.live {
		s.compactLocked()
	}
	s.mu.Unlock()
	clear(s.staged)
	s.staged = s.staged[:0]
	s.buf = s.buf[:0]
}

// compactLocked copies every encoding into fresh shared allocations of
// about 64 KiB, so that the old ones, holding dead bytes, can be freed.
func (s *GroupStore) compactLocked() {
	const chunkSize = 64 << 10
	var ids []string
	var b []byte
	flush := func() {
		chunk := string(b)
		off := 0
		for _, id := range ids {
			n := len(s.groups[id])
			s.groups[id] = chunk[off : off+n]
			off += n
		}
		ids, b = ids[:0], b[:0]
	}
	for id, val := range s.groups {
		ids = append(ids, id)
		b = append(b, val...)
		if len(b) >= chunkSize {
			flush()
		}
	}
	flush()
	s.dead = 0
}

// loaded publishes the groups loaded since the last Publish; the pipeline
// calls it before it reads the store.
func (s *GroupStore) loaded() {
	if s.loading {
		s.Publish()
		s.loading = false
	}
}

// get returns a group's encoding.
func (s *GroupStore) get(id string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	val, ok := s.groups[id]
	return val, ok
}

// load adds a group restored from the state store. The encodings of a
// load share allocations as a Publish's do.
func (s *GroupStore) load(id string, val []byte) {
	s.loading = true
	s.stage(id, val, false)
	if len(s.buf) >= 64<<10 {
		s.Publish()
	}
}

// Lookup returns the row of the group with id (the group key's encoding,
// as in Change.Key) as an insert, and false when the group has no row.
func (s *GroupStore) Lookup(id string) (Change, bool, error) {
	val, ok := s.get(id)
	if !ok {
		return Change{}, false, nil
	}
	return rowOfGroup(id, val)
}

// Rows returns every group's row as an insert, in key order.
func (s *GroupStore) Rows() ([]Change, error) {
	s.mu.RLock()
	ids := make([]string, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	vals := make([]string, 0, len(ids))
	slices.Sort(ids)
	for _, id := range ids {
		vals = append(vals, s.groups[id])
	}
	s.mu.RUnlock()
	var out []Change
	for i, id := range ids {
		c, ok, err := rowOfGroup(id, vals[i])
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// Len returns the number of groups.
func (s *GroupStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.groups)
}

// rowOfGroup decodes the head of an unwindowed group's encoding (see
// encodeGroup) into the insert of its emitted row, without decoding the
// accumulators' state.
func rowOfGroup(id string, val string) (Change, bool, error) {
	var head [8]Value
	if err := decodeHead(val, head[:]); err != nil {
		return Change{}, false, fmt.Errorf("streamsql: group state %q: %w", id, err)
	}
	if head[7].IsNull() {
		return Change{}, false, nil
	}
	return Change{Op: Insert, Row: head[7].List(), Key: id, KeyVals: head[6].List(),
		WindowStart: head[0].I, WindowEnd: head[1].I, Time: head[3].I, Offset: head[4].I}, true, nil
}

// decodeHead decodes the first len(into) values of a row encoding.
func decodeHead(val string, into []Value) error {
	n, w := binary.Uvarint([]byte(val[:min(len(val), binary.MaxVarintLen64)]))
	if w <= 0 || n < uint64(len(into)) {
		return types.ErrCorrupt
	}
	b := []byte(val[w:])
	for i := range into {
		v, rest, err := types.DecodeKey(b)
		if err != nil {
			return err
		}
		into[i], b = v, rest
	}
	return nil
}
