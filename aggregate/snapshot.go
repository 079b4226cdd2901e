package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fjord-data/fjord/eventstore"
)

// Snapshot is an aggregate's encoded state as of a version.
type Snapshot struct {
	Version  eventstore.Version  // the last event the state covers
	Position eventstore.Position // that event's position
	Data     []byte
}

// SnapshotStore keeps the latest snapshot of each aggregate stream. A
// backend must be safe for concurrent use. Saving a snapshot older than
// the stored one may be ignored.
type SnapshotStore interface {
	// LoadSnapshot returns the latest snapshot of stream, or false.
	LoadSnapshot(ctx context.Context, stream eventstore.StreamID) (Snapshot, bool, error)
	SaveSnapshot(ctx context.Context, stream eventstore.StreamID, s Snapshot) error
}

// SnapshotEventType is the type of the events StreamSnapshots appends.
const SnapshotEventType = "Snapshot"

// StreamSnapshots keeps snapshots in the event store: the snapshot of
// stream "account-42" is the last event of stream "accountsnapshot-42",
// whose metadata records the version and position it covers.
type StreamSnapshots struct {
	Store *eventstore.Store
}

type snapshotMeta struct {
	Version  eventstore.Version  `json:"version"`
	Position eventstore.Position `json:"position"`
}

// SnapshotStream returns the stream that holds the snapshots of stream.
func SnapshotStream(stream eventstore.StreamID) eventstore.StreamID {
	cat, id, _ := strings.Cut(string(stream), "-")
	return eventstore.StreamID(cat + "snapshot-" + id)
}

// LoadSnapshot reads the last event of the snapshot stream.
func (s *StreamSnapshots) LoadSnapshot(ctx context.Context, stream eventstore.StreamID) (Snapshot, bool, error) {
	for e, err := range s.Store.ReadStream(ctx, SnapshotStream(stream), eventstore.ReadStreamOptions{Backwards: true, Limit: 1}) {
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return Snapshot{}, false, nil
		}
		if err != nil {
			return Snapshot{}, false, err
		}
		var m snapshotMeta
		if err := json.Unmarshal(e.Metadata, &m); err != nil {
			return Snapshot{}, false, fmt.Errorf("snapshot event %s@%d has bad metadata: %w", e.Stream, e.Version, err)
		}
		return Snapshot{Version: m.Version, Position: m.Position, Data: e.Data}, true, nil
	}
	return Snapshot{}, false, nil
}

// SaveSnapshot appends the snapshot to the snapshot stream.
func (s *StreamSnapshots) SaveSnapshot(ctx context.Context, stream eventstore.StreamID, snap Snapshot) error {
	meta, err := json.Marshal(snapshotMeta{Version: snap.Version, Position: snap.Position})
	if err != nil {
		return err
	}
	_, err = s.Store.Append(ctx, SnapshotStream(stream), eventstore.Any,
		eventstore.Event{Type: SnapshotEventType, Data: snap.Data, Metadata: meta})
	return err
}

func (r *Repository[S]) marshal(s S) ([]byte, error) {
	if r.def.Marshal != nil {
		return r.def.Marshal(s)
	}
	return json.Marshal(s)
}

func (r *Repository[S]) unmarshal(data []byte, s *S) error {
	if r.def.Unmarshal != nil {
		return r.def.Unmarshal(data, s)
	}
	return json.Unmarshal(data, s)
}
