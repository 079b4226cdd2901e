package grpcstore

import (
	"encoding/hex"
	"fmt"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
	"github.com/fjord-data/fjord/eventstore/driver"
)

// batchToProto converts a batch to an Append request. Events whose IDs the
// Store generated are sent without one: the server generates its own
// (also fresh), which spares it the idempotency look-up.
func batchToProto(b *driver.Batch) *esv1.AppendRequest {
	req := &esv1.AppendRequest{Appends: make([]*esv1.StreamAppend, len(b.Appends))}
	for i, a := range b.Appends {
		evs := make([]*esv1.Event, len(a.Events))
		for j := range a.Events {
			e := &a.Events[j]
			pe := &esv1.Event{Type: e.Type, ContentType: e.ContentType, Data: e.Data, Metadata: e.Metadata,
				CorrelationId: e.CorrelationID, CausationId: e.CausationID}
			if !e.GeneratedID {
				pe.EventId = &esv1.Event_IdBytes{IdBytes: e.ID[:]}
			}
			evs[j] = pe
		}
		req.Appends[i] = &esv1.StreamAppend{Stream: a.Stream, Expected: expectedToProto(a.Expected), Events: evs}
	}
	return req
}

func expectedToProto(e driver.Expected) *esv1.ExpectedVersion {
	switch e.Kind {
	case driver.ExpectNoStream:
		return &esv1.ExpectedVersion{Kind: &esv1.ExpectedVersion_NoStream{}}
	case driver.ExpectExists:
		return &esv1.ExpectedVersion{Kind: &esv1.ExpectedVersion_StreamExists{}}
	case driver.ExpectExact:
		return &esv1.ExpectedVersion{Kind: &esv1.ExpectedVersion_Exact{Exact: e.Version}}
	}
	return nil // any
}

func recordFromProto(e *esv1.RecordedEvent) (driver.Record, error) {
	id, err := parseUUID(e.GetId())
	if err != nil {
		return driver.Record{}, fmt.Errorf("grpcstore: event at position %d: %w", e.GetPosition(), err)
	}
	return driver.Record{
		Event: driver.Event{ID: id, Type: e.GetType(), ContentType: e.GetContentType(), Data: e.GetData(), Metadata: e.GetMetadata(),
			CorrelationID: e.GetCorrelationId(), CausationID: e.GetCausationId()},
		Stream: e.GetStream(), Version: e.GetVersion(), Position: e.GetPosition(), Time: e.GetTime().AsTime(),
	}, nil
}

// parseUUID parses the canonical form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func parseUUID(s string) ([16]byte, error) {
	var id [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("invalid event ID %q", s)
	}
	var h [32]byte
	copy(h[0:8], s[0:8])
	copy(h[8:12], s[9:13])
	copy(h[12:16], s[14:18])
	copy(h[16:20], s[19:23])
	copy(h[20:32], s[24:36])
	if _, err := hex.Decode(id[:], h[:]); err != nil {
		return id, fmt.Errorf("invalid event ID %q", s)
	}
	return id, nil
}
