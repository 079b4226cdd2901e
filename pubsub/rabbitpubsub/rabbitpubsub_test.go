package rabbitpubsub_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fjord-data/fjord/internal/faultnet"
	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/rabbitpubsub"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const envRabbitMQ = "FJORD_TEST_RABBITMQ"

// brokerURL returns the test broker's URL or skips the test.
func brokerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(envRabbitMQ)
	if u == "" {
		t.Skipf("%s is not set: skipping RabbitMQ tests", envRabbitMQ)
	}
	return u
}

// unique returns prefix with a random suffix, for broker objects that
// other engineers' tests must not collide with.
func unique(prefix string) string { return prefix + "-" + rand.Text()[:10] }

// dial connects to the test broker (or to url) and closes at cleanup.
func dial(t testing.TB, u string) *rabbitpubsub.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := rabbitpubsub.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// admin is a raw AMQP channel for inspecting and deleting test objects.
func admin(t testing.TB) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(brokerURL(t))
	if err != nil {
		t.Fatalf("amqp.Dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("Channel: %v", err)
	}
	return ch
}

// fixture is an exchange and a quorum queue bound to it, both deleted at
// cleanup.
type fixture struct {
	conn            *rabbitpubsub.Conn
	exchange, queue string
	topic           *rabbitpubsub.Topic
	sub             *rabbitpubsub.Subscription
}

func newFixture(t testing.TB, subOpts *rabbitpubsub.SubscriptionOptions) *fixture {
	t.Helper()
	f := &fixture{conn: dial(t, brokerURL(t)), exchange: unique("fjord-test-x"), queue: unique("fjord-test-q")}
	ch := admin(t)
	t.Cleanup(func() {
		_, _ = ch.QueueDelete(f.queue, false, false, false)
		_ = ch.ExchangeDelete(f.exchange, false, false)
	})
	ctx := t.Context()
	var err error
	if f.topic, err = f.conn.OpenTopic(ctx, f.exchange, nil); err != nil {
		t.Fatalf("OpenTopic: %v", err)
	}
	t.Cleanup(func() { _ = f.topic.Close() })
	if f.sub, err = f.conn.OpenSubscription(ctx, f.exchange, f.queue, subOpts); err != nil {
		t.Fatalf("OpenSubscription: %v", err)
	}
	t.Cleanup(func() { _ = f.sub.Close() })
	return f
}

func message(i int) *driver.Message {
	return &driver.Message{
		Attributes: map[string]string{
			"id": fmt.Sprintf("id-%d", i), "source": "/test", "specversion": "1.0", "type": "test.created",
			"subject": "thing/1", "time": "2026-11-25T10:00:00.123456789Z", "datacontenttype": "application/json",
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		},
		Key:  fmt.Sprintf("key-%d", i%3),
		Data: fmt.Appendf(nil, `{"n":%d}`, i),
	}
}

// ignoreReceived drops the fields a receiver adds.
var ignoreReceived = cmpopts.IgnoreFields(driver.Message{}, "AckID", "Deliveries", "PublishTime")

func TestSendReceiveInOrder(t *testing.T) {
	f := newFixture(t, nil)
	var want []*driver.Message
	for i := range 50 {
		want = append(want, message(i))
	}
	if err := f.topic.Send(t.Context(), want); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := drivertest.ReceiveN(t, f.sub, len(want))
	if diff := cmp.Diff(want, got, ignoreReceived); diff != "" {
		t.Errorf("received messages (-want +got):\n%s", diff)
	}
	for _, m := range got {
		if m.Deliveries != 1 {
			t.Errorf("message %s: Deliveries = %d, want 1", m.Attributes["id"], m.Deliveries)
		}
	}
	if err := f.sub.Ack(t.Context(), drivertest.AckIDs(got)); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func TestNackRedeliversWithCount(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.topic.Send(t.Context(), []*driver.Message{message(1)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	var got []int
	for range 3 {
		m := drivertest.ReceiveN(t, f.sub, 1)
		got = append(got, m[0].Deliveries)
		if err := f.sub.Nack(t.Context(), drivertest.AckIDs(m)); err != nil {
			t.Fatalf("Nack: %v", err)
		}
	}
	if diff := cmp.Diff([]int{1, 2, 3}, got); diff != "" {
		t.Errorf("Deliveries of one message nacked three times (-want +got):\n%s", diff)
	}
}

func TestCloseRedelivers(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.topic.Send(t.Context(), []*driver.Message{message(1), message(2)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	first := drivertest.ReceiveN(t, f.sub, 2)
	if err := f.sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := f.sub.Ack(t.Context(), drivertest.AckIDs(first)); !errors.Is(err, rabbitpubsub.ErrClosed) {
		t.Errorf("Ack after Close = %v, want ErrClosed", err)
	}
	again, err := f.conn.OpenSubscription(t.Context(), f.exchange, f.queue, nil)
	if err != nil {
		t.Fatalf("OpenSubscription again: %v", err)
	}
	defer again.Close()
	got := drivertest.ReceiveN(t, again, 2)
	if diff := cmp.Diff(first, got, ignoreReceived); diff != "" {
		t.Errorf("redelivered messages (-first +again):\n%s", diff)
	}
	for _, m := range got {
		if m.Deliveries < 2 {
			t.Errorf("redelivered message %s: Deliveries = %d, want at least 2", m.Attributes["id"], m.Deliveries)
		}
	}
	if err := again.Ack(t.Context(), drivertest.AckIDs(got)); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

// TestBinaryContentMode reads a published message with a plain AMQP client
// and checks it against the CloudEvents AMQP protocol binding.
func TestBinaryContentMode(t *testing.T) {
	// basic.get needs a queue without single-active-consumer.
	f := newFixture(t, &rabbitpubsub.SubscriptionOptions{CompetingConsumers: true})
	if err := f.sub.Close(); err != nil { // a plain client reads the queue
		t.Fatalf("Close: %v", err)
	}
	m := message(7)
	if err := f.topic.Send(t.Context(), []*driver.Message{m}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	ch := admin(t)
	var d amqp.Delivery
	for ok := false; !ok; {
		var err error
		if d, ok, err = ch.Get(f.queue, true); err != nil {
			t.Fatalf("Get: %v", err)
		}
	}
	delete(d.Headers, "x-delivery-count") // the quorum queue's, not the publisher's
	type wire struct {
		Headers                map[string]any
		ContentType, MessageID string
		DeliveryMode           uint8
		RoutingKey, Body       string
	}
	got := wire{d.Headers, d.ContentType, d.MessageId, d.DeliveryMode, d.RoutingKey, string(d.Body)}
	want := wire{
		Headers: map[string]any{
			"cloudEvents_id": "id-7", "cloudEvents_source": "/test", "cloudEvents_specversion": "1.0",
			"cloudEvents_type": "test.created", "cloudEvents_subject": "thing/1",
			"cloudEvents_time":         "2026-11-25T10:00:00.123456789Z",
			"cloudEvents_traceparent":  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"cloudEvents_partitionkey": "key-1",
		},
		ContentType: "application/json", MessageID: "id-7", DeliveryMode: amqp.Persistent,
		RoutingKey: "test.created", Body: `{"n":7}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AMQP message (-want +got):\n%s", diff)
	}
}

// TestReceiveOtherProducers receives what another CloudEvents producer may
// send: the ':' prefix, native AMQP types, headers that are no attributes.
func TestReceiveOtherProducers(t *testing.T) {
	f := newFixture(t, nil)
	ch := admin(t)
	pub := amqp.Publishing{
		Headers: amqp.Table{
			"cloudEvents:id": "x-1", "cloudEvents:source": "/other", "cloudEvents:specversion": "1.0",
			"cloudEvents:type": "other.happened", "cloudEvents:time": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			"cloudEvents:sequence": int64(42), "cloudEvents:sampled": true, "x-app": "not an attribute",
		},
		ContentType: "text/plain", Body: []byte("hello"),
	}
	if err := ch.PublishWithContext(t.Context(), f.exchange, "other.happened", true, false, pub); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := drivertest.ReceiveN(t, f.sub, 1)[0]
	want := &driver.Message{
		Attributes: map[string]string{
			"id": "x-1", "source": "/other", "specversion": "1.0", "type": "other.happened",
			"time": "2026-01-02T03:04:05Z", "sequence": "42", "sampled": "true", "datacontenttype": "text/plain",
		},
		Data: []byte("hello"),
	}
	if diff := cmp.Diff(want, got, ignoreReceived); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
	if err := f.sub.Ack(t.Context(), []driver.AckID{got.AckID}); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func TestUnroutableIsAnError(t *testing.T) {
	c := dial(t, brokerURL(t))
	exchange := unique("fjord-test-x")
	ch := admin(t)
	t.Cleanup(func() { _ = ch.ExchangeDelete(exchange, false, false) })
	topic, err := c.OpenTopic(t.Context(), exchange, nil)
	if err != nil {
		t.Fatalf("OpenTopic: %v", err)
	}
	defer topic.Close()
	err = topic.Send(t.Context(), []*driver.Message{message(1), message(2)})
	var ue *rabbitpubsub.UnroutableError
	if !errors.As(err, &ue) || !errors.Is(err, rabbitpubsub.ErrUnroutable) {
		t.Fatalf("Send to an exchange without queues = %v, want an *UnroutableError", err)
	}
	if diff := cmp.Diff([]string{"id-1", "id-2"}, slices.Sorted(slices.Values(ue.IDs))); diff != "" {
		t.Errorf("unroutable IDs (-want +got):\n%s", diff)
	}
	if topic.IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = true, want false", err)
	}
	// The topic stays usable: once a queue is bound, the same Send works.
	queue := unique("fjord-test-q")
	t.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })
	sub, err := c.OpenSubscription(t.Context(), exchange, queue, nil)
	if err != nil {
		t.Fatalf("OpenSubscription: %v", err)
	}
	defer sub.Close()
	if err := topic.Send(t.Context(), []*driver.Message{message(1), message(2)}); err != nil {
		t.Fatalf("Send after binding a queue: %v", err)
	}
}

func TestQuorumQueueArguments(t *testing.T) {
	c := dial(t, brokerURL(t))
	exchange, queue, dlx := unique("fjord-test-x"), unique("fjord-test-q"), unique("fjord-test-dlx")
	ch := admin(t)
	t.Cleanup(func() {
		_, _ = ch.QueueDelete(queue, false, false, false)
		_ = ch.ExchangeDelete(exchange, false, false)
	})
	if _, err := c.OpenTopic(t.Context(), exchange, &rabbitpubsub.TopicOptions{Kind: "fanout"}); err != nil {
		t.Fatalf("OpenTopic: %v", err)
	}
	opts := &rabbitpubsub.SubscriptionOptions{DeliveryLimit: 5, DeadLetterExchange: dlx, DeadLetterRoutingKey: "parked"}
	sub, err := c.OpenSubscription(t.Context(), exchange, queue, opts)
	if err != nil {
		t.Fatalf("OpenSubscription: %v", err)
	}
	defer sub.Close()
	// Declaring again with the same arguments succeeds; with others the
	// broker refuses, which proves the queue has exactly these.
	if _, err := ch.QueueDeclare(queue, true, false, false, false, rabbitpubsub.QueueArguments(opts)); err != nil {
		t.Fatalf("redeclaring with the same arguments: %v", err)
	}
	ch2 := admin(t)
	other := rabbitpubsub.QueueArguments(&rabbitpubsub.SubscriptionOptions{DeliveryLimit: 6})
	if _, err := ch2.QueueDeclare(queue, true, false, false, false, other); err == nil {
		t.Errorf("redeclaring with another delivery limit succeeded; the queue lacks its arguments")
	}
	want := amqp.Table{"x-queue-type": "quorum", "x-single-active-consumer": true, "x-delivery-limit": int64(5),
		"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "parked"}
	if diff := cmp.Diff(want, rabbitpubsub.QueueArguments(opts)); diff != "" {
		t.Errorf("QueueArguments (-want +got):\n%s", diff)
	}
}

// TestBrokerLost cuts the connection under a Topic and a Subscription:
// calls fail with retryable errors, and succeed again once the broker is
// reachable (the next call dials again).
func TestBrokerLost(t *testing.T) {
	base := brokerURL(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := faultnet.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	c := dial(t, u.String())
	exchange, queue := unique("fjord-test-x"), unique("fjord-test-q")
	ch := admin(t)
	t.Cleanup(func() {
		_, _ = ch.QueueDelete(queue, false, false, false)
		_ = ch.ExchangeDelete(exchange, false, false)
	})
	topic, err := c.OpenTopic(t.Context(), exchange, nil)
	if err != nil {
		t.Fatalf("OpenTopic: %v", err)
	}
	defer topic.Close()
	sub, err := c.OpenSubscription(t.Context(), exchange, queue, nil)
	if err != nil {
		t.Fatalf("OpenSubscription: %v", err)
	}
	defer sub.Close()
	if err := topic.Send(t.Context(), []*driver.Message{message(1)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	received := drivertest.ReceiveN(t, sub, 1)

	proxy.Cut()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err = topic.Send(ctx, []*driver.Message{message(2)})
	if err == nil || !topic.IsRetryable(err) {
		t.Errorf("Send with the broker gone = %v, want a retryable error", err)
	}
	if _, err := sub.Receive(ctx, 1); err == nil || !sub.IsRetryable(err) {
		t.Errorf("Receive with the broker gone = %v, want a retryable error", err)
	}
	if err := c.Ping(ctx); err == nil || !topic.IsRetryable(err) {
		t.Errorf("Ping with the broker gone = %v, want a retryable error", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the calls took until the context's deadline: %v", ctx.Err())
	}
	// The message received before the cut was requeued by the broker.
	direct := dial(t, base)
	sub2, err := direct.OpenSubscription(t.Context(), exchange, queue, nil)
	if err != nil {
		t.Fatalf("OpenSubscription: %v", err)
	}
	defer sub2.Close()
	again := drivertest.ReceiveN(t, sub2, 1)
	if diff := cmp.Diff(received, again, ignoreReceived); diff != "" {
		t.Errorf("after the cut (-before +after):\n%s", diff)
	}
	if err := sub.Ack(t.Context(), drivertest.AckIDs(received)); err == nil {
		t.Errorf("Ack of a message from the lost channel = nil, want an error")
	}
}

func TestUnreachableBroker(t *testing.T) {
	tests := []struct {
		name, addr string
	}{
		{"refused", faultnet.RefusedAddr(t)},
		{"hanging", faultnet.NewBlackhole(t).Addr()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			_, err := rabbitpubsub.Dial(ctx, "amqp://guest:guest@"+tt.addr+"/", nil)
			var ce *rabbitpubsub.ConnectionError
			if !errors.As(err, &ce) {
				t.Fatalf("Dial(%s) = %v, want a *ConnectionError", tt.addr, err)
			}
			if !(&rabbitpubsub.Topic{}).IsRetryable(err) {
				t.Errorf("IsRetryable(%v) = false, want true", err)
			}
			if !strings.Contains(err.Error(), "dial") {
				t.Errorf("error %q does not say it failed to dial", err)
			}
		})
	}
}

// TestMissingExchange: publishing to an exchange that was deleted closes
// the channel with 404; that is reported as it is, not as a retryable
// connection problem, and the topic works again once the exchange is back.
func TestMissingExchange(t *testing.T) {
	f := newFixture(t, nil)
	ch := admin(t)
	if err := ch.ExchangeDelete(f.exchange, false, false); err != nil {
		t.Fatalf("ExchangeDelete: %v", err)
	}
	err := f.topic.Send(t.Context(), []*driver.Message{message(1)})
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotFound || f.topic.IsRetryable(err) {
		t.Fatalf("Send to a deleted exchange = %v, want a 404 *amqp.Error, not retryable", err)
	}
	if _, err := f.conn.OpenTopic(t.Context(), f.exchange, nil); err != nil {
		t.Fatalf("OpenTopic: %v", err)
	}
	if err := ch.QueueBind(f.queue, "#", f.exchange, false, nil); err != nil {
		t.Fatalf("QueueBind: %v", err)
	}
	if err := f.topic.Send(t.Context(), []*driver.Message{message(2)}); err != nil {
		t.Fatalf("Send once the exchange is back: %v", err)
	}
	got := drivertest.ReceiveN(t, f.sub, 1)
	if id := got[0].Attributes["id"]; id != "id-2" {
		t.Errorf("received %s, want id-2", id)
	}
}

// TestBrokerHangs freezes the connection under a Topic: Send returns a
// retryable error when its context ends, although the broker never
// answers.
func TestBrokerHangs(t *testing.T) {
	u, err := url.Parse(brokerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := faultnet.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// A short heartbeat: the frozen connection is declared dead soon, and
	// the cleanup's Close calls return.
	c, err := rabbitpubsub.Dial(ctx, u.String(), &rabbitpubsub.DialOptions{Heartbeat: time.Second})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	exchange := unique("fjord-test-x")
	ch := admin(t)
	t.Cleanup(func() { _ = ch.ExchangeDelete(exchange, false, false) })
	topic, err := c.OpenTopic(ctx, exchange, &rabbitpubsub.TopicOptions{Kind: "fanout"})
	if err != nil {
		t.Fatalf("OpenTopic: %v", err)
	}
	defer topic.Close()

	proxy.Freeze()
	sendCtx, sendCancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer sendCancel()
	err = topic.Send(sendCtx, []*driver.Message{message(1)})
	if !errors.Is(err, context.DeadlineExceeded) || !topic.IsRetryable(err) {
		t.Errorf("Send to a hung broker = %v, want a retryable context.DeadlineExceeded", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Send outlived its context")
	}
}

// TestFrameMax: a message whose attributes fill the connection's frame_max
// exactly is published and received; one byte more fails the Send with
// ErrTooLarge, not retryable, before anything is sent, and the connection
// (and the subscription on it) goes on working. amqp091 would otherwise
// publish it and the broker close the whole connection.
func TestFrameMax(t *testing.T) {
	f := newFixture(t, nil)
	frameMax := f.conn.FrameMax()
	if frameMax <= 0 {
		t.Fatalf("FrameMax = %d, want the negotiated frame_max", frameMax)
	}
	fill := func(i, extra int) *driver.Message {
		m := message(i)
		m.Attributes["fjordpad"] = ""
		m.Attributes["fjordpad"] = strings.Repeat("p", frameMax-rabbitpubsub.HeaderFrameSize(m)+extra)
		return m
	}
	tooBig := fill(1, 1)
	err := f.topic.Send(t.Context(), []*driver.Message{tooBig})
	if !errors.Is(err, rabbitpubsub.ErrTooLarge) || f.topic.IsRetryable(err) {
		t.Errorf("Send of a message one byte over frame_max: %v (retryable %v), want ErrTooLarge, not retryable", err, f.topic.IsRetryable(err))
	}
	fits := fill(2, 0)
	if err := f.topic.Send(t.Context(), []*driver.Message{fits}); err != nil {
		t.Fatalf("Send of a message that fills frame_max: %v", err)
	}
	got := drivertest.ReceiveN(t, f.sub, 1)[0]
	if got.Attributes["id"] != "id-2" || got.Attributes["fjordpad"] != fits.Attributes["fjordpad"] {
		t.Errorf("received id %q with a %d-byte fjordpad, want id-2 with %d bytes", got.Attributes["id"], len(got.Attributes["fjordpad"]), len(fits.Attributes["fjordpad"]))
	}
	if err := f.sub.Ack(t.Context(), []driver.AckID{got.AckID}); err != nil {
		t.Errorf("Ack after the refused Send: %v (the subscription's channel should have survived)", err)
	}
}
