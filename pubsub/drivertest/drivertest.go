// Package drivertest is the conformance suite every pubsub broker driver
// runs. It drives a driver.Topic and driver.Subscription directly and
// checks that CloudEvents attributes, keys and binary data survive the
// round trip, batches and concurrent senders, acknowledgement (an acked
// message never comes back), redelivery after Nack and after Close,
// delivery counts, per-key order, deduplication, Receive's blocking and
// max, use after Close, and fan-out to several durable subscriptions. A
// feature the driver does not declare in Harness.Features is skipped.
//
// An adapter runs it from its own test in a few lines:
//
//	func TestConformance(t *testing.T) {
//		b := mempubsub.New(nil)
//		drivertest.Run(t, drivertest.Harness{
//			Features: mempubsub.Features,
//			NewDestination: func(ctx context.Context, t *testing.T, subs []string) (*drivertest.Destination, error) {
//				topic := t.Name() // unique per subtest
//				for _, s := range subs {
//					b.CreateSubscription(topic, s)
//				}
//				return &drivertest.Destination{
//					Topic: func(context.Context) (driver.Topic, error) { return b.Topic(topic), nil },
//					Subscription: func(_ context.Context, name string) (driver.Subscription, error) {
//						return b.Subscription(topic, name), nil
//					},
//				}, nil
//			},
//		})
//	}
//
// Each subtest checks that it leaves no goroutine behind
// (go.uber.org/goleak) once its topics and subscriptions are closed and the
// destination's cleanup has run, so the conformance test must not run in
// parallel with other tests of its package, and a driver's shared
// connection must be opened before Run (or set Harness.NoLeakCheck). The
// suite never sleeps: it waits on deliveries, with Harness.Timeout only as
// a failure guard and Harness.QuietWait as the bounded wait that shows a
// message does not come.
package drivertest

import (
	"context"
	"testing"
	"time"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// Harness connects the suite to one broker.
type Harness struct {
	// Features says what the driver can do; the suite skips the rest.
	Features driver.Features
	// NewDestination creates a destination unique to the running test (a
	// fresh NATS subject and stream, RabbitMQ exchange, Kafka topic…) and
	// the durable subscriptions named subs on it, which keep every message
	// sent to it from now on, whether or not a Subscription is attached.
	// It registers the destination's removal with t.Cleanup. When the
	// broker cannot give one destination several subscriptions that each
	// get every message, it returns an error matching
	// errors.ErrUnsupported for len(subs) > 1, and the fan-out test is
	// skipped.
	NewDestination func(ctx context.Context, t *testing.T, subs []string) (*Destination, error)
	// Timeout bounds each subtest; it is a failure guard, never a wait
	// (default 30s).
	Timeout time.Duration
	// QuietWait is how long the suite receives to show that a message does
	// not come (an acked message after reattaching, a duplicate). Brokers
	// that redeliver a message only after an ack timeout must redeliver
	// within Timeout; QuietWait only has to outlast the broker's delivery
	// latency (default 300ms).
	QuietWait time.Duration
	// NoLeakCheck turns off the per-subtest goroutine leak check.
	NoLeakCheck bool
	// ReplaysFromAckFloor says that a subscription attached again after
	// one closed with messages unacknowledged receives everything from
	// the first unacknowledged message on, in order, acknowledged ones
	// included (a driver option that keeps each key's order after a
	// crash, such as natspubsub's ResumeFromAckFloor); the suite then
	// expects exactly that instead of the unacknowledged messages only.
	ReplaysFromAckFloor bool
}

// Destination opens topics and subscriptions on one destination.
type Destination struct {
	// Topic opens a new driver.Topic that sends to the destination. The
	// suite closes it.
	Topic func(ctx context.Context) (driver.Topic, error)
	// Subscription attaches a new driver.Subscription to the durable
	// subscription name (one of those NewDestination created). The suite
	// closes it, and may attach again afterwards.
	Subscription func(ctx context.Context, name string) (driver.Subscription, error)
}

func (h Harness) withDefaults() Harness {
	if h.Timeout <= 0 {
		h.Timeout = 30 * time.Second
	}
	if h.QuietWait <= 0 {
		h.QuietWait = 300 * time.Millisecond
	}
	return h
}

// Run runs the whole suite against the broker h connects to, one subtest
// per behaviour, grouped by concern.
func Run(t *testing.T, h Harness) {
	if h.NewDestination == nil {
		t.Fatal("drivertest: Harness.NewDestination is nil")
	}
	s := &suite{h: h.withDefaults()}
	t.Run("Send", func(t *testing.T) {
		t.Run("RoundTrip", s.testRoundTrip)
		t.Run("Batches", s.testBatches)
		t.Run("ConcurrentSenders", s.testConcurrentSenders)
		t.Run("AfterClose", s.testSendAfterClose)
		t.Run("LongAttributes", s.testLongAttributes)
	})
	t.Run("Receive", func(t *testing.T) {
		t.Run("BlocksUntilCancel", s.testReceiveBlocks)
		t.Run("WakesOnSend", s.testReceiveWakes)
		t.Run("Max", s.testReceiveMax)
		t.Run("AfterClose", s.testReceiveAfterClose)
		t.Run("FanOut", s.testFanOut)
	})
	t.Run("Ack", func(t *testing.T) {
		t.Run("NeverRedelivered", s.testAckNeverRedelivered)
		t.Run("RedeliveredAfterClose", s.testRedeliveredAfterClose)
		t.Run("RedeliveredAfterNack", s.testRedeliveredAfterNack)
	})
	t.Run("Order/KeysInterleaved", s.testOrderedKeys)
	t.Run("Order/AfterNack", s.testOrderAfterNack)
	t.Run("Dedup/SourceAndID", s.testDedup)
	t.Run("Router", s.testRouter)
}
