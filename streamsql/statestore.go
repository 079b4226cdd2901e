package streamsql

import (
	"slices"
	"strings"
	"sync"
)

// Definition is a stored CREATE statement, in canonical SQL, with the id of
// the persistent query it starts (CREATE … AS SELECT). Seq orders the
// definitions.
type Definition struct {
	SQL     string
	QueryID string
	Seq     uint64
}

// StateStore keeps an engine's definitions and its persistent queries'
// state. The package pebblestate keeps them on disk; the engine's default
// keeps them in memory. Implementations must be safe for concurrent use.
type StateStore interface {
	// Definitions returns every definition, by Seq.
	Definitions() ([]Definition, error)
	// AddDefinition and DeleteDefinition are durable when they return.
	AddDefinition(Definition) error
	DeleteDefinition(seq uint64) error
	// Load returns a query's committed input position and pending output
	// range (zero when none), and passes every state entry to entry.
	Load(queryID string, entry func(key string, val []byte) error) (pos uint64, pending [2]uint64, err error)
	// SetPending durably records the input range (from, to] of a stream
	// query's output batch before it is appended to the event store.
	SetPending(queryID string, from, to uint64) error
	// Commit writes the entries save reports (a nil value deletes), the
	// position, and clears the pending range, atomically: after a crash
	// either all of it or none of it is there.
	Commit(queryID string, pos uint64, save func(put func(key string, val []byte))) error
	// DropQuery deletes a query's position, pending range and entries.
	DropQuery(queryID string) error
	Close() error
}

// memState is the in-memory StateStore.
type memState struct {
	mu      sync.Mutex
	defs    []Definition
	queries map[string]*memQuery
}

type memQuery struct {
	pos     uint64
	pending [2]uint64
	entries map[string][]byte
}

func newMemState() *memState { return &memState{queries: map[string]*memQuery{}} }

func (m *memState) Definitions() ([]Definition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.defs), nil
}

func (m *memState) AddDefinition(d Definition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.defs = append(m.defs, d)
	slices.SortFunc(m.defs, func(a, b Definition) int { return int(a.Seq) - int(b.Seq) })
	return nil
}

func (m *memState) DeleteDefinition(seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.defs = slices.DeleteFunc(m.defs, func(d Definition) bool { return d.Seq == seq })
	return nil
}

func (m *memState) query(id string) *memQuery {
	q := m.queries[id]
	if q == nil {
		q = &memQuery{entries: map[string][]byte{}}
		m.queries[id] = q
	}
	return q
}

func (m *memState) Load(id string, entry func(key string, val []byte) error) (uint64, [2]uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.query(id)
	keys := make([]string, 0, len(q.entries))
	for k := range q.entries {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	for _, k := range keys {
		if err := entry(k, q.entries[k]); err != nil {
			return 0, [2]uint64{}, err
		}
	}
	return q.pos, q.pending, nil
}

func (m *memState) SetPending(id string, from, to uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.query(id).pending = [2]uint64{from, to}
	return nil
}

func (m *memState) Commit(id string, pos uint64, save func(put func(key string, val []byte))) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.query(id)
	save(func(k string, v []byte) {
		if v == nil {
			delete(q.entries, k)
		} else {
			q.entries[k] = v
		}
	})
	q.pos, q.pending = pos, [2]uint64{}
	return nil
}

func (m *memState) DropQuery(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.queries, id)
	return nil
}

func (m *memState) Close() error { return nil }
