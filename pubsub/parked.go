package pubsub

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"strconv"
	"time"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// ParkedOptions tune a Parked. The zero value works.
type ParkedOptions struct {
	// IdleWait is how long List waits for another parked message before it
	// ends (default 1s).
	IdleWait time.Duration
}

// Parked lists, inspects and requeues the messages of a park destination
// through a subscription on it; it works with every driver. Messages List
// yields stay held (unacknowledged, and not yielded again) until Requeue,
// Discard or Release settles them; Close gives back the rest. It is safe
// for concurrent use.
type Parked struct {
	sub  driver.Subscription
	opts ParkedOptions
}

// NewParked returns a Parked reading the park destination through sub.
// The Parked owns sub: Close closes it.
func NewParked(sub driver.Subscription, opts *ParkedOptions) *Parked {
	var o ParkedOptions
	if opts != nil {
		o = *opts
	}
	if o.IdleWait <= 0 {
		o.IdleWait = time.Second
	}
	return &Parked{sub: sub, opts: o}
}

// ParkedMessage is one parked message.
type ParkedMessage struct {
	// Reason, Attempts, Topic, Consumer, FirstFailure and LastFailure are
	// the park extensions (the failure times are zero when the message was
	// never handled).
	Reason                    string
	Attempts                  int
	Topic, Consumer           string
	FirstFailure, LastFailure time.Time
	// Message is the original message; nil when it is not a valid
	// CloudEvent, and Invalid then says why.
	Message *Message
	Invalid error
	// Original is the original message as the driver carries it, without
	// the park extensions: what Requeue sends back.
	Original *driver.Message
	// Raw is the parked copy as received (it holds the AckID).
	Raw *driver.Message
}

// List yields parked messages as they are received, until none has
// arrived for ParkedOptions.IdleWait or ctx ends (then it yields ctx's
// error). A parked copy whose park extensions are malformed is still
// yielded, with what could be read. When the loop stops early, the
// messages received and not yet yielded stay held too, until Close.
func (p *Parked) List(ctx context.Context) iter.Seq2[*ParkedMessage, error] {
	return func(yield func(*ParkedMessage, error) bool) {
		for {
			rctx, cancel := context.WithTimeout(ctx, p.opts.IdleWait)
			msgs, err := p.sub.Receive(rctx, 100)
			cancel()
			if err != nil {
				if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
					return // idle: everything parked was listed
				}
				yield(nil, fmt.Errorf("pubsub: list parked messages: %w", err))
				return
			}
			for _, dm := range msgs {
				if !yield(parsePark(dm), nil) {
					// The rest stay held until Close: a Nack could give back
					// the yielded ones too (stomppubsub and rabbitpubsub
					// give back all a subscription holds).
					return
				}
			}
		}
	}
}

// parsePark reads the park extensions of a parked copy.
func parsePark(dm *driver.Message) *ParkedMessage {
	a := dm.Attributes
	pm := &ParkedMessage{Reason: a[ExtParkReason], Topic: a[ExtParkTopic], Consumer: a[ExtParkConsumer], Raw: dm}
	pm.Attempts, _ = strconv.Atoi(a[ExtParkAttempts])
	pm.FirstFailure, _ = time.Parse(time.RFC3339Nano, a[ExtParkFirstFailure])
	pm.LastFailure, _ = time.Parse(time.RFC3339Nano, a[ExtParkLastFailure])
	orig := maps.Clone(a)
	for _, name := range []string{ExtParkReason, ExtParkAttempts, ExtParkTopic, ExtParkConsumer, ExtParkFirstFailure, ExtParkLastFailure} {
		delete(orig, name)
	}
	pm.Original = &driver.Message{Attributes: orig, Key: dm.Key, Data: dm.Data}
	pm.Message, pm.Invalid = fromDriver(pm.Original)
	if pm.Invalid != nil {
		pm.Message = nil
	}
	return pm
}

// Requeue sends pm's original message to to (normally the topic named by
// pm.Topic), then acknowledges the parked copy. The message goes with its
// own source and id and its requeue count in the driver.RequeueAttribute
// extension, so that a deduplicating broker does not drop it. When the send fails the
// parked copy stays held; when the ack fails the message is requeued and
// stays parked too (consumers deduplicate on source and id).
func (p *Parked) Requeue(ctx context.Context, pm *ParkedMessage, to driver.Topic) error {
	m := *pm.Original
	m.Attributes = maps.Clone(m.Attributes)
	n, _ := strconv.Atoi(m.Attributes[driver.RequeueAttribute])
	m.Attributes[driver.RequeueAttribute] = strconv.Itoa(n + 1)
	if err := to.Send(ctx, []*driver.Message{&m}); err != nil {
		return fmt.Errorf("pubsub: requeue parked message %q: %w", pm.Original.Attributes["id"], err)
	}
	if err := p.sub.Ack(ctx, []driver.AckID{pm.Raw.AckID}); err != nil {
		return fmt.Errorf("pubsub: requeued parked message %q, but removing it from the park destination failed: %w", pm.Original.Attributes["id"], err)
	}
	return nil
}

// Discard removes pm from the park destination for good.
func (p *Parked) Discard(ctx context.Context, pm *ParkedMessage) error {
	if err := p.sub.Ack(ctx, []driver.AckID{pm.Raw.AckID}); err != nil {
		return fmt.Errorf("pubsub: discard parked message %q: %w", pm.Original.Attributes["id"], err)
	}
	return nil
}

// Release gives pms back to the park destination unchanged, to be listed
// again. Over a driver whose Nack gives back everything its subscription
// holds (stomppubsub, rabbitpubsub) the other held messages go back too:
// settle those first.
func (p *Parked) Release(ctx context.Context, pms ...*ParkedMessage) error {
	ids := make([]driver.AckID, len(pms))
	for i, pm := range pms {
		ids[i] = pm.Raw.AckID
	}
	if err := p.sub.Nack(ctx, ids); err != nil {
		return fmt.Errorf("pubsub: release %d parked messages: %w", len(pms), err)
	}
	return nil
}

// Close closes the subscription; held messages stay parked.
func (p *Parked) Close() error { return p.sub.Close() }
