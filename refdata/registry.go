package refdata

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Registry holds the current snapshot of a process and replaces it when a
// bundle is applied. Readers call Current, which is one atomic load: a
// reader keeps the snapshot it got, consistent across all datasets, however
// many swaps happen meanwhile. A Registry is safe for concurrent use;
// applying, pinning and rolling back are serialized.
//
// The "refdata.Current()" is Registry.Current: the package keeps no
// mutable global, so each process (or test) owns its Registry, and Default
// is the compiled-in snapshot that a new Registry starts from.
type Registry struct {
	cur atomic.Pointer[Snapshot]
	mu  struct {
		sync.Mutex
		pins    map[string]string   // dataset → version held
		history map[string][]*Table // dataset → tables it had before, oldest first
	}
}

// NewRegistry returns a registry serving initial; nil means Default().
func NewRegistry(initial *Snapshot) *Registry {
	if initial == nil {
		initial = Default()
	}
	r := &Registry{}
	r.cur.Store(initial)
	r.mu.pins = map[string]string{}
	r.mu.history = map[string][]*Table{}
	return r
}

// Current returns the snapshot in force. It never returns nil.
func (r *Registry) Current() *Snapshot { return r.cur.Load() }

// Result tells what applying a bundle did.
type Result struct {
	Version string        // the bundle's version
	Applied []DatasetInfo // datasets replaced
	Held    []string      // datasets the bundle carried but pins kept
}

// Apply validates b against the current snapshot and swaps in the result.
// The bundle's version must be newer than the current snapshot's (the
// error wraps ErrStale otherwise), and a pinned dataset in b is kept as it
// is (reported in Held), unless b carries it at a version older than the
// pin, which rejects b. Apply does not check signatures: callers that take
// bundles from outside use rollout.ApplySigned (or rollout.Verify first).
// On any error nothing changes.
func (r *Registry) Apply(b *Bundle) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.cur.Load()
	if CompareVersions(b.Version, cur.version) <= 0 {
		return Result{}, fmt.Errorf("%w: bundle version %s, current %s", ErrStale, b.Version, cur.version)
	}
	eff, held, err := r.unpinnedLocked(b)
	if err != nil {
		return Result{}, err
	}
	next, err := Validate(cur, eff)
	if err != nil {
		return Result{}, err
	}
	res := Result{Version: b.Version, Held: held}
	for i := range next.tables {
		if next.tables[i] != cur.tables[i] {
			r.mu.history[schemas[i].name] = append(r.mu.history[schemas[i].name], cur.tables[i])
			res.Applied = append(res.Applied, DatasetInfo{Name: schemas[i].name, Version: next.tables[i].Version,
				Source: next.tables[i].Source, Rows: len(next.tables[i].Rows)})
		}
	}
	r.cur.Store(next)
	return res, nil
}

// unpinnedLocked returns b without its pinned datasets (and their
// tombstones), and the names of those it left out.
func (r *Registry) unpinnedLocked(b *Bundle) (*Bundle, []string, error) {
	eff := *b
	eff.Tables = nil
	var held []string
	for _, t := range b.Tables {
		pin, pinned := r.mu.pins[t.Name]
		switch {
		case !pinned:
			eff.Tables = append(eff.Tables, t)
		case CompareVersions(t.Version, pin) < 0:
			return nil, nil, fmt.Errorf("%w: dataset %s version %s is older than the pinned %s", ErrStale, t.Name, t.Version, pin)
		default:
			held = append(held, t.Name)
		}
	}
	if tomb, ok := eff.Table(tombstonesTable); ok && len(held) > 0 {
		kept := tomb.Rows[:0:0]
		for _, row := range tomb.Rows {
			if _, pinned := r.mu.pins[row[0]]; !pinned {
				kept = append(kept, row)
			}
		}
		tomb.Rows = kept
	}
	return &eff, held, nil
}

// Pin holds a dataset at the version it has now: later bundles do not
// change it until Unpin, and a bundle carrying it at an older version is
// rejected.
func (r *Registry) Pin(dataset string) (DatasetInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	info, err := r.cur.Load().Dataset(dataset)
	if err != nil {
		return DatasetInfo{}, err
	}
	r.mu.pins[dataset] = info.Version
	return info, nil
}

// Unpin lets bundles change a dataset again.
func (r *Registry) Unpin(dataset string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.mu.pins, dataset)
}

// Pins returns the pinned datasets and their versions.
func (r *Registry) Pins() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.mu.pins))
	for k, v := range r.mu.pins {
		out[k] = v
	}
	return out
}

// ErrNoHistory is returned by Rollback when a dataset has had no other version.
var ErrNoHistory = errors.New("refdata: no earlier version to roll back to")

// Rollback restores the version a dataset had before it last changed (in
// the end, the compiled-in one) and pins it there, so that the next bundle
// does not bring the rolled-back version straight back. The result must
// still validate (references resolve); otherwise nothing changes.
func (r *Registry) Rollback(dataset string) (DatasetInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.mu.history[dataset]
	if len(h) == 0 {
		return DatasetInfo{}, fmt.Errorf("%w: dataset %s", ErrNoHistory, dataset)
	}
	prev := h[len(h)-1]
	cur := r.cur.Load()
	tables := cur.tables
	tables[schemaIndex(dataset)] = prev
	next, err := build(cur.version, cur.created, tables, cur)
	if err == nil {
		err = next.checkReferences()
	}
	if err != nil {
		return DatasetInfo{}, fmt.Errorf("%w: rolling %s back to %s: %v", ErrInvalid, dataset, prev.Version, err)
	}
	r.mu.history[dataset] = h[:len(h)-1]
	r.mu.pins[dataset] = prev.Version
	r.cur.Store(next)
	return DatasetInfo{Name: dataset, Version: prev.Version, Source: prev.Source, Rows: len(prev.Rows)}, nil
}
