package server

import (
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
	"github.com/fjord-data/fjord/eventstore"
)

// appendsFromProto converts an Append request. Malformed IDs and expected
// versions are reported as *eventstore.InvalidError naming the field.
func appendsFromProto(req *esv1.AppendRequest) ([]eventstore.StreamAppend, error) {
	out := make([]eventstore.StreamAppend, len(req.GetAppends()))
	for i, a := range req.GetAppends() {
		prefix := ""
		if len(req.GetAppends()) > 1 {
			prefix = fmt.Sprintf("appends[%d].", i)
		}
		evs := make([]eventstore.Event, len(a.GetEvents()))
		for j, e := range a.GetEvents() {
			id, err := eventID(e)
			if err != nil {
				return nil, &eventstore.InvalidError{Field: fmt.Sprintf("%sevents[%d].id", prefix, j), Reason: err.Error()}
			}
			evs[j] = eventstore.Event{ID: id, Type: e.GetType(), ContentType: e.GetContentType(), Data: e.GetData(),
				Metadata: e.GetMetadata(), CorrelationID: e.GetCorrelationId(), CausationID: e.GetCausationId()}
		}
		out[i] = eventstore.StreamAppend{Stream: eventstore.StreamID(a.GetStream()), Expected: expectedFromProto(a.GetExpected()), Events: evs}
	}
	return out, nil
}

func eventID(e *esv1.Event) (uuid.UUID, error) {
	switch id := e.GetEventId().(type) {
	case *esv1.Event_Id:
		u, err := uuid.Parse(id.Id)
		if err != nil {
			return uuid.Nil, fmt.Errorf("%q is not a UUID", id.Id)
		}
		return u, nil
	case *esv1.Event_IdBytes:
		u, err := uuid.FromBytes(id.IdBytes)
		if err != nil {
			return uuid.Nil, fmt.Errorf("an ID in bytes is 16 bytes long, not %d", len(id.IdBytes))
		}
		return u, nil
	}
	return uuid.Nil, nil
}

func expectedFromProto(e *esv1.ExpectedVersion) eventstore.ExpectedVersion {
	switch k := e.GetKind().(type) {
	case *esv1.ExpectedVersion_NoStream:
		return eventstore.NoStream
	case *esv1.ExpectedVersion_StreamExists:
		return eventstore.StreamExists
	case *esv1.ExpectedVersion_Exact:
		return eventstore.Exact(eventstore.Version(k.Exact))
	}
	return eventstore.Any
}

func recordedToProto(e *eventstore.RecordedEvent) *esv1.RecordedEvent {
	return &esv1.RecordedEvent{
		Id: e.ID.String(), Type: e.Type, ContentType: e.ContentType, Data: e.Data, Metadata: e.Metadata,
		CorrelationId: e.CorrelationID, CausationId: e.CausationID,
		Stream: string(e.Stream), Version: uint64(e.Version), Position: uint64(e.Position), Time: timestamppb.New(e.Time),
	}
}

func filterFromProto(f *esv1.Filter) eventstore.Filter {
	return eventstore.Filter{StreamPrefix: f.GetStreamPrefix(), Category: f.GetCategory(), EventTypes: f.GetEventTypes()}
}

func subscribeOptionsFromProto(r *esv1.SubscribeRequest, defaultPage int) eventstore.SubscribeOptions {
	o := eventstore.SubscribeOptions{
		Stream:       eventstore.StreamID(r.GetStream()),
		Filter:       filterFromProto(r.GetFilter()),
		From:         eventstore.Position(r.GetFrom()),
		AfterVersion: eventstore.Version(r.GetAfterVersion()),
		PageSize:     int(r.GetPageSize()),
	}
	if r.GetFromEnd() {
		o.From = eventstore.End
	}
	if r.GetAfterEnd() {
		o.AfterVersion = eventstore.EndVersion
	}
	if d := r.GetCheckpointInterval(); d != nil {
		o.CheckpointInterval = d.AsDuration()
	}
	if o.PageSize <= 0 || o.PageSize > defaultPage {
		o.PageSize = defaultPage
	}
	return o
}

func deliveryToProto(d *eventstore.Delivery) *esv1.SubscribeResponse {
	switch d.Kind {
	case eventstore.DeliveredEvent:
		return &esv1.SubscribeResponse{Item: &esv1.SubscribeResponse_Event{Event: recordedToProto(&d.Event)}}
	case eventstore.DeliveredCheckpoint:
		return &esv1.SubscribeResponse{Item: &esv1.SubscribeResponse_Checkpoint{Checkpoint: &esv1.Checkpoint{Position: uint64(d.Position)}}}
	default:
		return &esv1.SubscribeResponse{Item: &esv1.SubscribeResponse_CaughtUp{CaughtUp: &esv1.CaughtUp{Position: uint64(d.Position)}}}
	}
}
