// Package driver is the seam a message broker implements for package
// pubsub. It imports only the standard library.
//
// Drivers move messages and report errors; they never retry, log, trace,
// batch on a timer, validate envelopes or dead-letter on their own. All of
// that is written once in package pubsub. A driver maps a Message's
// CloudEvents attributes to its transport's native headers as that
// transport's CloudEvents binding says (binary content mode) and back, so
// other CloudEvents implementations can read what Fjord publishes.
//
// Optional abilities are separate interfaces found by type assertion
// (Pinger); the seam itself stays small.
package driver

import (
	"context"
	"time"
)

// Message is one message as a broker carries it.
type Message struct {
	// Attributes are the CloudEvents context attributes and extensions by
	// attribute name: "id", "source", "specversion", "type", "subject",
	// "time", "datacontenttype", "dataschema", "traceparent", "tracestate"
	// and any extension. Names are lower-case [a-z0-9]; values are the
	// attributes' canonical string forms (RFC 3339 for "time").
	Attributes map[string]string
	// Key orders messages: a broker with Features.OrderedKeys delivers the
	// messages of one key in the order they were sent. It travels as the
	// transport's native key where there is one (Kafka's record key) and as
	// the "partitionkey" extension otherwise.
	Key string
	// Data is the payload, opaque to the driver.
	Data []byte

	// AckID identifies a received message to Ack and Nack. Set by
	// Subscription.Receive; ignored by Topic.Send.
	AckID AckID
	// Deliveries counts the broker's deliveries of a received message: 1 the
	// first time, more after redeliveries, 0 when the broker does not say.
	Deliveries int
	// PublishTime is when the broker accepted a received message, zero when
	// it does not say.
	PublishTime time.Time
}

// AckID is a driver's handle on one received message.
type AckID any

// Topic sends messages to one destination (a NATS subject bound to a
// stream, a RabbitMQ exchange, a Kafka topic, a STOMP destination).
// Implementations are safe for concurrent use.
type Topic interface {
	// Send publishes msgs and returns once the broker has taken
	// responsibility for every one of them (JetStream publish acks,
	// RabbitMQ publisher confirms, Kafka acks=all, STOMP receipts). Messages
	// with the same Key keep their order within msgs and across calls that
	// do not overlap. On error any subset may have been published: the
	// caller sends the same messages again and relies on deduplication by
	// (source, id).
	Send(ctx context.Context, msgs []*Message) error
	// IsRetryable reports whether an error from Send may succeed if tried
	// again (a broker that is down or busy, a timeout).
	IsRetryable(err error) bool
	// Close releases the topic. Sends after Close fail.
	Close() error
}

// Subscription receives the messages of one durable consumer (a JetStream
// durable consumer, a RabbitMQ queue, a Kafka consumer group member, a
// STOMP durable subscription). A message is delivered at least once: it
// comes back, to this or another member of the same consumer, until it is
// acknowledged. Implementations are safe for concurrent use.
type Subscription interface {
	// Receive blocks until at least one message is available or ctx ends,
	// and returns between 1 and max messages. It returns ctx.Err() when ctx
	// ends first.
	Receive(ctx context.Context, max int) ([]*Message, error)
	// Ack acknowledges messages: they are never delivered again to this
	// consumer. A driver whose broker commits offsets (Kafka) commits up to
	// the lowest message that is not yet acknowledged.
	Ack(ctx context.Context, ids []AckID) error
	// Nack gives messages back for redelivery as soon as the broker can.
	// Package pubsub uses it only for messages it took but will not handle
	// (a subscription that stops); failed handlers are retried in process
	// and then parked, so that per-key order holds.
	Nack(ctx context.Context, ids []AckID) error
	// IsRetryable reports whether an error from Receive, Ack or Nack may
	// succeed if tried again.
	IsRetryable(err error) bool
	// Close releases the subscription; messages received and not
	// acknowledged are redelivered later. The durable consumer itself stays.
	Close() error
}

// Pinger is implemented by drivers that can check their broker connection
// cheaply (for readiness probes).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Features says what a broker can do; the conformance suite skips what a
// driver declares it cannot.
type Features struct {
	// OrderedKeys: messages of one key are received in the order sent.
	OrderedKeys bool
	// Dedup: the broker drops a message whose DedupKey it has seen within
	// its deduplication window (JetStream's Nats-Msg-Id).
	Dedup bool
	// Redelivery: a message received and not acknowledged is delivered
	// again after Nack or after the subscription closes.
	Redelivery bool
	// Deliveries: received messages carry their delivery count.
	Deliveries bool
}

// RequeueAttribute is the extension a parked message carries once it is
// requeued: how many times it was. It is part of DedupKey, so that a
// deduplicating broker does not drop a requeued message as a repeat.
const RequeueAttribute = "fjordrequeue"

// ParkReasonAttribute is the extension that says why package pubsub
// parked a message (pubsub.ExtParkReason).
const ParkReasonAttribute = "fjordparkreason"

// ParkAttribute is the extension the copy of a message that package
// pubsub parks carries: the name of the consumer that parked it (possibly
// empty). It is part of DedupKey, so that a deduplicating broker does not
// drop the parked copy as a repeat of the original when both share a
// deduplication window (two subjects of one JetStream stream): the Router
// acknowledges the original once the parked copy is sent.
const ParkAttribute = "fjordparkconsumer"

// DedupKey is what a broker with Features.Dedup deduplicates m on: its
// "source" and "id" attributes, RequeueAttribute when it is set, and
// ParkAttribute when it is present.
func DedupKey(m *Message) string {
	k := m.Attributes["source"] + "\x00" + m.Attributes["id"]
	if n := m.Attributes[RequeueAttribute]; n != "" {
		k += "\x00" + n
	}
	if c, ok := m.Attributes[ParkAttribute]; ok {
		k += "\x00parked\x00" + c
	}
	return k
}
