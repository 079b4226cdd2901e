package replica

import (
	"context"
	"iter"
	"slices"
	"strings"

	"github.com/fjord-data/fjord/eventstore"
)

// Change is one change of an entity, or (with Key empty) a position
// marker saying that everything up to Position has been delivered.
type Change struct {
	Key     string
	Version uint64 // increases with every change of the entity
	Deleted bool
	Data    []byte // the entity's whole state; nil when deleted
	// Position is where the change sits in the source, to resume from;
	// 0 when the source has no positions (the replica then keeps no
	// checkpoint and relies on redelivery and version gating).
	Position eventstore.Position
}

// Source delivers changes after a position, in order per entity, until ctx
// ends or an error occurs (which it yields before it stops).
type Source interface {
	Changes(ctx context.Context, after eventstore.Position) iter.Seq2[Change, error]
}

// CategorySource reads the changes of an event store category: event
// "customer-42"@v is the change of entity "42" to version v, whose data is
// the entity's whole state, or its deletion when its type is one of
// DeleteTypes.
type CategorySource struct {
	Store       *eventstore.Store
	Category    string
	DeleteTypes []string
}

// Changes subscribes to the category after position after.
func (c *CategorySource) Changes(ctx context.Context, after eventstore.Position) iter.Seq2[Change, error] {
	return func(yield func(Change, error) bool) {
		opts := eventstore.SubscribeOptions{Filter: eventstore.Filter{Category: c.Category}, From: after, PageSize: 2048}
		for d, err := range c.Store.Subscribe(ctx, opts) {
			if err != nil {
				yield(Change{}, err)
				return
			}
			var ch Change
			switch d.Kind {
			case eventstore.DeliveredEvent:
				ch = c.change(d.Event)
			case eventstore.DeliveredCheckpoint:
				ch = Change{Position: d.Position}
			default:
				continue
			}
			if !yield(ch, nil) {
				return
			}
		}
	}
}

func (c *CategorySource) change(e eventstore.RecordedEvent) Change {
	ch := Change{Key: strings.TrimPrefix(string(e.Stream), c.Category+"-"), Version: uint64(e.Version), Position: e.Position}
	if slices.Contains(c.DeleteTypes, e.Type) {
		ch.Deleted = true
	} else {
		ch.Data = e.Data
	}
	return ch
}

// Row is an entity as the replica (or the owner's snapshot) holds it.
type Row struct {
	Key     string
	Version uint64
	Deleted bool // a tombstone
	Data    []byte
}

// Snapshot is the owner's entities as of Position.
type Snapshot struct {
	Position eventstore.Position
	Rows     iter.Seq2[Row, error]
}

// CategorySnapshot folds a category up to the store's current head into
// the latest state of each entity (tombstones included), in key order. It
// holds one row per entity in memory.
func CategorySnapshot(ctx context.Context, store *eventstore.Store, category string, deleteTypes []string) (Snapshot, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	src := &CategorySource{Store: store, Category: category, DeleteTypes: deleteTypes}
	latest := map[string]Row{}
	if head > 0 {
		for e, err := range store.ReadAll(ctx, eventstore.ReadAllOptions{Until: head, Filter: eventstore.Filter{Category: category}}) {
			if err != nil {
				return Snapshot{}, err
			}
			ch := src.change(e)
			latest[ch.Key] = Row{Key: ch.Key, Version: ch.Version, Deleted: ch.Deleted, Data: ch.Data}
		}
	}
	keys := make([]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return Snapshot{Position: head, Rows: func(yield func(Row, error) bool) {
		for _, k := range keys {
			if !yield(latest[k], nil) {
				return
			}
		}
	}}, nil
}
