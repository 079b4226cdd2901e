package streamsql

import (
	"context"
	"slices"
	"sync"

	"github.com/fjord-data/fjord/streamsql/internal/exec"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// table is a materialized table's read side: the current rows of a
// persistent query's output, the input position they reflect, and the hub
// of its change subscribers. Pull queries read it under a read lock; the
// query's goroutine applies each batch under the write lock.
//
// The rows of an unwindowed aggregation kept encoded (exec.KeepEncoded)
// are not copied here: the table reads them from the pipeline's group
// store, whose saved groups apply publishes under the write lock.
type table struct {
	hub *hub
	mu  struct {
		sync.RWMutex
		groups   *exec.GroupStore        // when set, the rows; rows is unused
		rows     map[string]*exec.Change // by row id (key and window)
		byKey    map[string][]string     // windowed: key → row ids
		position uint64
		changed  chan struct{} // closed and replaced when position moves
		err      error         // the query failed
	}
}

func newTable(h *hub) *table {
	t := &table{hub: h}
	t.mu.rows = map[string]*exec.Change{}
	t.mu.byKey = map[string][]string{}
	t.mu.changed = make(chan struct{})
	return t
}

func keyOf(c *exec.Change) string {
	var b []byte
	for _, k := range c.KeyVals {
		b = types.AppendKey(b, k)
	}
	return string(b)
}

// apply records a batch of changes and the position it brings the table
// to, then publishes the changes to subscribers.
// Lock order: the hub's lock, then the table's, so that a subscriber's
// snapshot and the batches published after it neither overlap nor leave a
// gap.
func (t *table) apply(cs []exec.Change, pos uint64) { t.applyExpired(cs, nil, pos) }

// applyExpired is apply that also drops the windowed rows past their
// retention (expired: row ids), silently: subscribers are not told, as
// the query emits no change for them. A table reading an aggregation's
// group store instead publishes the groups its last Save wrote.
func (t *table) applyExpired(cs []exec.Change, expired []string, pos uint64) {
	t.hub.mu.Lock()
	defer t.hub.mu.Unlock()
	t.mu.Lock()
	if t.mu.groups != nil {
		t.mu.groups.Publish()
	} else {
		t.record(cs, expired)
	}
	moved := pos > t.mu.position
	if moved {
		t.mu.position = pos
		close(t.mu.changed)
		t.mu.changed = make(chan struct{})
	}
	t.mu.Unlock()
	if len(cs) > 0 {
		t.hub.publishLocked(cs)
	}
}

// record applies changes and expiries to rows; t.mu is held.
func (t *table) record(cs []exec.Change, expired []string) {
	for i := range cs {
		c := &cs[i]
		_, had := t.mu.rows[c.Key]
		switch c.Op {
		case exec.Delete:
			t.removeLocked(c)
		default:
			cc := *c
			cc.Op, cc.Old = exec.Insert, nil
			t.mu.rows[c.Key] = &cc
			if c.Windowed && !had {
				k := keyOf(c)
				t.mu.byKey[k] = append(t.mu.byKey[k], c.Key)
			}
		}
	}
	// After the changes: a window can be emitted and expire in one batch.
	for _, id := range expired {
		if c, ok := t.mu.rows[id]; ok {
			t.removeLocked(c)
		}
	}
}

// removeLocked deletes the row of c.Key; t.mu is held.
func (t *table) removeLocked(c *exec.Change) {
	delete(t.mu.rows, c.Key)
	if c.Windowed {
		k := keyOf(c)
		t.mu.byKey[k] = slices.DeleteFunc(t.mu.byKey[k], func(id string) bool { return id == c.Key })
		if len(t.mu.byKey[k]) == 0 {
			delete(t.mu.byKey, k)
		}
	}
}

// advance moves the position without changes (checkpoints).
func (t *table) advance(pos uint64) { t.apply(nil, pos) }

func (t *table) fail(err error) {
	t.mu.Lock()
	t.mu.err = err
	close(t.mu.changed)
	t.mu.changed = make(chan struct{})
	t.mu.Unlock()
}

// waitFor blocks until the table reflects every event up to pos.
func (t *table) waitFor(ctx context.Context, pos uint64) error {
	for {
		t.mu.RLock()
		p, ch, err := t.mu.position, t.mu.changed, t.mu.err
		t.mu.RUnlock()
		switch {
		case p >= pos:
			return nil
		case err != nil:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// lookup returns the rows of one key (several for a windowed table), or
// every row when key is nil, in row-id order.
func (t *table) lookup(key *types.Value, windowed bool) []exec.Change {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if g := t.mu.groups; g != nil {
		return lookupGroups(g, key)
	}
	var out []exec.Change
	switch {
	case key != nil && !windowed:
		if c, ok := t.mu.rows[string(types.AppendKey(nil, *key))]; ok {
			out = append(out, *c)
		}
		return out
	case key != nil:
		for _, id := range t.mu.byKey[string(types.AppendKey(nil, *key))] {
			out = append(out, *t.mu.rows[id])
		}
	default:
		out = make([]exec.Change, 0, len(t.mu.rows))
		for _, c := range t.mu.rows {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b exec.Change) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return out
}

// lookupGroups is lookup on the rows of an aggregation kept encoded (never
// windowed). Their encodings were written by the pipeline or checked when
// it loaded them, so an error is a bug.
func lookupGroups(g *exec.GroupStore, key *types.Value) []exec.Change {
	if key == nil {
		rows, err := g.Rows()
		if err != nil {
			panic(err)
		}
		return rows
	}
	c, ok, err := g.Lookup(string(types.AppendKey(nil, *key)))
	if err != nil {
		panic(err)
	}
	if !ok {
		return nil
	}
	return []exec.Change{c}
}

// useGroups makes the table read its rows from an aggregation's group
// store (exec.Pipeline.KeepEncoded), dropping rows it recorded.
func (t *table) useGroups(g *exec.GroupStore) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.groups = g
	clear(t.mu.rows)
	clear(t.mu.byKey)
}

// snapshot returns every row, for a new subscriber; the caller holds the
// hub's lock, which apply's publish takes after releasing t.mu.
func (t *table) snapshot() []exec.Change { return t.lookup(nil, false) }
