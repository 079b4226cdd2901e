package replica

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fjord-data/fjord/pubsub"
)

// ExtVersion is the CloudEvents extension that carries an entity's version
// in a change message, as a decimal string (CloudEvents integer extensions
// are 32-bit; versions are not).
const ExtVersion = "entityversion"

// ErrNotAChange is matched by the error of decoding a message that is not
// an entity change: an unknown type, no key, or no valid version.
var ErrNotAChange = errors.New("replica: message is not an entity change")

// MessageCodec maps entity changes to pubsub messages and back, for a
// replica fed by another service's topic instead of its event store. The
// owner publishes with Message; the replica's Router handles them with
// Replica.Route (or Replica.MessageHandler).
//
// A change message has type ChangeType (the entity's whole state in Data)
// or DeleteType (no data), subject SubjectPrefix+key, the version in the
// ExtVersion extension, and the ID key@version, so that a deduplicating
// broker or inbox drops a change published twice. Replicas apply changes
// by version, so redelivered and reordered messages are harmless; a
// message of another type is not a change. The zero value is not usable:
// ChangeType and DeleteType are required.
type MessageCodec struct {
	// Source is the owner's CloudEvents source ("/crm/customers"), set by
	// Message.
	Source string
	// ChangeType and DeleteType are the event types of an upsert and of a
	// deletion ("crm.customer.changed", "crm.customer.deleted").
	ChangeType, DeleteType string
	// SubjectPrefix is put before the key in the subject ("customer/"),
	// and must be there when decoding.
	SubjectPrefix string
	// ContentType is the media type of the entity's data, set by Message
	// ("application/json"); optional.
	ContentType string
}

// Message returns the message that publishes c. c.Position is not carried:
// a replica fed by messages has no source positions.
func (mc MessageCodec) Message(c Change) *pubsub.Message {
	v := strconv.FormatUint(c.Version, 10)
	m := &pubsub.Message{ID: c.Key + "@" + v, Source: mc.Source, Type: mc.ChangeType, Subject: mc.SubjectPrefix + c.Key,
		Extensions: map[string]string{ExtVersion: v}}
	if c.Deleted {
		m.Type = mc.DeleteType
	} else {
		m.Data, m.DataContentType = c.Data, mc.ContentType
	}
	return m
}

// Change decodes m. The error wraps ErrNotAChange and says why.
func (mc MessageCodec) Change(m *pubsub.Message) (Change, error) {
	bad := func(why string) (Change, error) {
		return Change{}, fmt.Errorf("%w: message %q (type %q, subject %q) %s", ErrNotAChange, m.ID, m.Type, m.Subject, why)
	}
	if m.Type != mc.ChangeType && m.Type != mc.DeleteType {
		return bad(fmt.Sprintf("has a type other than %q and %q", mc.ChangeType, mc.DeleteType))
	}
	key, ok := strings.CutPrefix(m.Subject, mc.SubjectPrefix)
	if !ok || key == "" {
		return bad(fmt.Sprintf("has no key after the subject prefix %q", mc.SubjectPrefix))
	}
	s, ok := m.Extensions[ExtVersion]
	if !ok {
		return bad("has no " + ExtVersion + " extension")
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return bad(fmt.Sprintf("has %s %q, not a positive integer", ExtVersion, s))
	}
	c := Change{Key: key, Version: v, Deleted: m.Type == mc.DeleteType}
	if !c.Deleted {
		c.Data = m.Data
		if c.Data == nil {
			c.Data = []byte{} // a live row has data, even when empty
		}
	}
	return c, nil
}

// MessageHandler returns a Router handler that applies each change message
// to r in its own transaction. A message that is not a change is poison
// (pubsub.Permanent): the Router parks it at once. Database errors are
// returned, for the Router to retry.
func (r *Replica) MessageHandler(mc MessageCodec) pubsub.Handler {
	return func(ctx context.Context, m *pubsub.Message) error {
		c, err := mc.Change(m)
		if err != nil {
			return pubsub.Permanent(err)
		}
		return r.Apply(ctx, c)
	}
}

// BatchMessageHandler returns a Router batch handler that applies the
// change messages of a batch in one transaction. When one of them is not a
// change, nothing is applied and the error is poison, so the Router parks
// the whole batch; requeueing its good changes later is harmless.
func (r *Replica) BatchMessageHandler(mc MessageCodec) pubsub.BatchHandler {
	return func(ctx context.Context, msgs []*pubsub.Message) error {
		changes := make([]Change, len(msgs))
		for i, m := range msgs {
			c, err := mc.Change(m)
			if err != nil {
				return pubsub.Permanent(err)
			}
			changes[i] = c
		}
		return r.Apply(ctx, changes...)
	}
}

// Route registers r's handlers on router for mc's two types: batch
// handlers when batch is not nil, else one message per transaction.
// Register before router.Run; like Router.Handle it panics when a type
// already has a handler.
func (r *Replica) Route(router *pubsub.Router, mc MessageCodec, batch *pubsub.BatchOptions) {
	for _, typ := range []string{mc.ChangeType, mc.DeleteType} {
		if batch != nil {
			router.HandleBatch(typ, r.BatchMessageHandler(mc), batch)
		} else {
			router.Handle(typ, r.MessageHandler(mc))
		}
	}
}
