package stomppubsub_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fjord-data/fjord/internal/faultnet"
	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/stomppubsub"
	"github.com/go-stomp/stomp/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const envActiveMQ = "FJORD_TEST_ACTIVEMQ"

// brokerAddr returns the test broker's STOMP address or skips the test.
func brokerAddr(t testing.TB) string {
	t.Helper()
	a := os.Getenv(envActiveMQ)
	if a == "" {
		t.Skipf("%s is not set: skipping ActiveMQ tests", envActiveMQ)
	}
	return a
}

// uniqueQueue is a queue no other test uses. ActiveMQ cannot delete a
// queue over STOMP: tests leave it empty, and the CI broker (.ci/activemq)
// removes inactive empty queues.
func uniqueQueue() string { return "/queue/fjord-test-" + rand.Text()[:10] }

func openTopic(t testing.TB, addr, dest string) *stomppubsub.Topic {
	t.Helper()
	return openTopicWith(t, addr, dest, nil)
}

func openTopicWith(t testing.TB, addr, dest string, opts *stomppubsub.TopicOptions) *stomppubsub.Topic {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	topic, err := stomppubsub.OpenTopic(ctx, addr, dest, opts)
	if err != nil {
		t.Fatalf("OpenTopic: %v", err)
	}
	t.Cleanup(func() { _ = topic.Close() })
	return topic
}

func openSub(t testing.TB, addr, dest string, opts *stomppubsub.SubscriptionOptions) *stomppubsub.Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := stomppubsub.OpenSubscription(ctx, addr, dest, opts)
	if err != nil {
		t.Fatalf("OpenSubscription: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func message(i int) *driver.Message {
	return &driver.Message{
		Attributes: map[string]string{
			"id": fmt.Sprintf("id-%d", i), "source": "/test", "specversion": "1.0", "type": "test.created",
			"subject": "a:b\\c\nd", "time": "2026-11-25T10:00:00.123456789Z", "datacontenttype": "application/json",
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		},
		Key:  fmt.Sprintf("key-%d", i%3),
		Data: fmt.Appendf(nil, "{\"n\":%d}\x00\xff", i),
	}
}

var ignoreReceived = cmpopts.IgnoreFields(driver.Message{}, "AckID", "Deliveries", "PublishTime")

func TestSendReceiveInOrder(t *testing.T) {
	addr, q := brokerAddr(t), uniqueQueue()
	topic, sub := openTopic(t, addr, q), openSub(t, addr, q, nil)
	if err := topic.Ping(t.Context()); err != nil {
		t.Fatalf("Topic.Ping: %v", err)
	}
	if err := sub.Ping(t.Context()); err != nil {
		t.Fatalf("Subscription.Ping: %v", err)
	}
	var want []*driver.Message
	for i := range 40 {
		want = append(want, message(i))
	}
	before := time.Now().Add(-time.Second) // the broker's clock may lag a little
	if err := topic.Send(t.Context(), want[:25]); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := topic.Send(t.Context(), want[25:]); err != nil {
		t.Fatalf("Send: %v", err)
	}
	var got []*driver.Message
	for len(got) < len(want) { // ack as we go: the prefetch window is 16
		msgs := drivertest.ReceiveN(t, sub, 1)
		if err := sub.Ack(t.Context(), drivertest.AckIDs(msgs)); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		got = append(got, msgs...)
	}
	if diff := cmp.Diff(want, got, ignoreReceived); diff != "" {
		t.Errorf("received messages (-want +got):\n%s", diff)
	}
	for _, m := range got {
		if m.Deliveries != 1 || m.PublishTime.Before(before) {
			t.Errorf("message %s: Deliveries = %d, PublishTime = %v; want 1 and after %v",
				m.Attributes["id"], m.Deliveries, m.PublishTime, before)
		}
	}
}

// TestWireHeaders reads a sent message with a plain STOMP client: the
// headers are Fjord's mapping of the CloudEvents attributes.
func TestWireHeaders(t *testing.T) {
	addr, q := brokerAddr(t), uniqueQueue()
	topic := openTopic(t, addr, q)
	m := message(4)
	if err := topic.Send(t.Context(), []*driver.Message{m}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	conn, err := stomp.Dial("tcp", addr, stomp.ConnOpt.AcceptVersion(stomp.V12), stomp.ConnOpt.Host("/"),
		stomp.ConnOpt.Logger(silent{}))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Disconnect()
	sub, err := conn.Subscribe(q, stomp.AckClientIndividual)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	got := <-sub.C
	if got.Err != nil {
		t.Fatalf("receiving: %v", got.Err)
	}
	if err := conn.Ack(got); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	want := map[string]string{
		"cloudEvents_id": "id-4", "cloudEvents_source": "/test", "cloudEvents_specversion": "1.0",
		"cloudEvents_type": "test.created", "cloudEvents_subject": "a:b\\c\nd",
		"cloudEvents_time":         "2026-11-25T10:00:00.123456789Z",
		"cloudEvents_traceparent":  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"cloudEvents_partitionkey": "key-1", "content-type": "application/json", "persistent": "true",
		"body": "{\"n\":4}\x00\xff",
	}
	gotHeaders := map[string]string{"body": string(got.Body)}
	for k := range want {
		if v, ok := got.Header.Contains(k); ok {
			gotHeaders[k] = v
		}
	}
	if diff := cmp.Diff(want, gotHeaders); diff != "" {
		t.Errorf("STOMP MESSAGE frame (-want +got):\n%s", diff)
	}
}

func TestNackRedelivers(t *testing.T) {
	addr, q := brokerAddr(t), uniqueQueue()
	topic, sub := openTopic(t, addr, q), openSub(t, addr, q, nil)
	if err := topic.Send(t.Context(), []*driver.Message{message(1), message(2)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	first := drivertest.ReceiveN(t, sub, 2)
	// Nack one: the subscription ends, so both come back; the other's ack
	// is stale.
	if err := sub.Nack(t.Context(), drivertest.AckIDs(first[:1])); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	if err := sub.Ack(t.Context(), drivertest.AckIDs(first[1:])); !errors.Is(err, stomppubsub.ErrStaleAck) || sub.IsRetryable(err) {
		t.Errorf("Ack after Nack = %v, want ErrStaleAck, not retryable", err)
	}
	again := drivertest.ReceiveN(t, sub, 2)
	if diff := cmp.Diff(first, again, ignoreReceived); diff != "" {
		t.Errorf("redelivered (-first +again):\n%s", diff)
	}
	for _, m := range again {
		if m.Deliveries != 2 {
			t.Errorf("redelivered %s: Deliveries = %d, want 2", m.Attributes["id"], m.Deliveries)
		}
	}
	if err := sub.Ack(t.Context(), drivertest.AckIDs(again)); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func TestCloseRedelivers(t *testing.T) {
	addr, q := brokerAddr(t), uniqueQueue()
	topic := openTopic(t, addr, q)
	if err := topic.Send(t.Context(), []*driver.Message{message(1)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sub := openSub(t, addr, q, nil)
	first := drivertest.ReceiveN(t, sub, 1)
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sub2 := openSub(t, addr, q, nil)
	again := drivertest.ReceiveN(t, sub2, 1)
	if diff := cmp.Diff(first, again, ignoreReceived); diff != "" {
		t.Errorf("redelivered (-first +again):\n%s", diff)
	}
	if err := sub2.Ack(t.Context(), drivertest.AckIDs(again)); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

// TestVirtualTopicFanOut sends once to a virtual topic; each consumer's
// queue gets a copy.
func TestVirtualTopicFanOut(t *testing.T) {
	addr := brokerAddr(t)
	name := "fjord-test-" + rand.Text()[:10]
	subs := []*stomppubsub.Subscription{
		openSub(t, addr, stomppubsub.VirtualTopicQueue("billing", name), nil),
		openSub(t, addr, stomppubsub.VirtualTopicQueue("shipping", name), nil),
	}
	topic := openTopic(t, addr, stomppubsub.VirtualTopic(name))
	want := []*driver.Message{message(1), message(2)}
	if err := topic.Send(t.Context(), want); err != nil {
		t.Fatalf("Send: %v", err)
	}
	for i, s := range subs {
		got := drivertest.ReceiveN(t, s, 2)
		if diff := cmp.Diff(want, got, ignoreReceived); diff != "" {
			t.Errorf("consumer %d (-want +got):\n%s", i, diff)
		}
		if err := s.Ack(t.Context(), drivertest.AckIDs(got)); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
}

// TestBrokerLost cuts the connections under a Topic and a Subscription:
// calls fail with retryable errors bounded by ctx; the unacknowledged
// message comes back.
func TestBrokerLost(t *testing.T) {
	addr, q := brokerAddr(t), uniqueQueue()
	proxy := faultnet.NewProxy(t, addr)
	// A short heart-beat: a receipt asked for as the connection dies is
	// given up after it, and Close waits for that.
	dial := stomppubsub.DialOptions{HeartBeat: time.Second}
	topic := openTopicWith(t, proxy.Addr(), q, &stomppubsub.TopicOptions{Dial: dial})
	sub := openSub(t, proxy.Addr(), q, &stomppubsub.SubscriptionOptions{Dial: dial})
	if err := topic.Send(t.Context(), []*driver.Message{message(1)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	received := drivertest.ReceiveN(t, sub, 1)
	proxy.Cut()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	defer func() { t.Logf("took %v", time.Since(start)) }()
	if err := topic.Send(ctx, []*driver.Message{message(2)}); err == nil || !topic.IsRetryable(err) {
		t.Errorf("Send with the broker gone = %v, want a retryable error", err)
	}
	t.Logf("send done %v", time.Since(start))
	if err := topic.Ping(ctx); err == nil || !topic.IsRetryable(err) {
		t.Errorf("Ping with the broker gone = %v, want a retryable error", err)
	}
	if _, err := sub.Receive(ctx, 1); err == nil || !sub.IsRetryable(err) {
		t.Errorf("Receive with the broker gone = %v, want a retryable error", err)
	}
	if _, err := sub.Receive(ctx, 1); err == nil || !sub.IsRetryable(err) {
		t.Errorf("second Receive with the broker gone = %v, want a retryable error (a failed dial)", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the calls took until the context's deadline: %v", ctx.Err())
	}
	if err := sub.Ack(t.Context(), drivertest.AckIDs(received)); err == nil {
		t.Errorf("Ack after the connection was lost = nil, want an error")
	}
	direct := openSub(t, addr, q, nil)
	again := drivertest.ReceiveN(t, direct, 1)
	if diff := cmp.Diff(received, again, ignoreReceived); diff != "" {
		t.Errorf("after the cut (-before +after):\n%s", diff)
	}
	if err := direct.Ack(t.Context(), drivertest.AckIDs(again)); err != nil {
		t.Fatalf("Ack: %v", err)
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
			_, err := stomppubsub.OpenTopic(ctx, tt.addr, "/queue/x", nil)
			var ce *stomppubsub.ConnectionError
			if !errors.As(err, &ce) || !(&stomppubsub.Topic{}).IsRetryable(err) {
				t.Fatalf("OpenTopic(%s) = %v, want a retryable *ConnectionError", tt.addr, err)
			}
			_, err = stomppubsub.OpenSubscription(ctx, tt.addr, "/queue/x", nil)
			if !errors.As(err, &ce) {
				t.Fatalf("OpenSubscription(%s) = %v, want a *ConnectionError", tt.addr, err)
			}
		})
	}
}

// TestAckConfirmed: once Ack returns, the broker has the acknowledgement:
// cutting the connection right after does not bring the message back.
func TestAckConfirmed(t *testing.T) {
	addr, q := brokerAddr(t), uniqueQueue()
	proxy := faultnet.NewProxy(t, addr)
	topic := openTopic(t, addr, q)
	sub := openSub(t, proxy.Addr(), q, &stomppubsub.SubscriptionOptions{Dial: stomppubsub.DialOptions{HeartBeat: time.Second}})
	if err := topic.Send(t.Context(), []*driver.Message{message(1), message(2)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := drivertest.ReceiveN(t, sub, 2)
	if err := sub.Ack(t.Context(), drivertest.AckIDs(got[:1])); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	proxy.Cut()
	direct := openSub(t, addr, q, nil)
	again := drivertest.ReceiveN(t, direct, 1)
	if id := again[0].Attributes["id"]; id != "id-2" {
		t.Fatalf("after the cut received %s, want only the unacknowledged id-2", id)
	}
	if err := direct.Ack(t.Context(), drivertest.AckIDs(again)); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if more, err := direct.Receive(ctx, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Receive after acking everything = %d messages, %v; want none", len(more), err)
	}
}

// TestMessageGroupsKeepKeysTogether: with MessageGroups, two competing
// consumers of one queue each get whole keys, in the order sent.
func TestMessageGroupsKeepKeysTogether(t *testing.T) {
	addr, q := brokerAddr(t), uniqueQueue()
	competing := &stomppubsub.SubscriptionOptions{CompetingConsumers: true, Prefetch: 5}
	subs := []*stomppubsub.Subscription{openSub(t, addr, q, competing), openSub(t, addr, q, competing)}
	topic := openTopicWith(t, addr, q, &stomppubsub.TopicOptions{MessageGroups: true})
	var sent []*driver.Message
	for i := range 60 {
		sent = append(sent, message(i)) // keys key-0, key-1, key-2 in turn
	}
	if err := topic.Send(t.Context(), sent); err != nil {
		t.Fatalf("Send: %v", err)
	}

	type receipt struct {
		sub int
		m   *driver.Message
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got := make(chan receipt)
	errs := make(chan error, len(subs))
	for i, s := range subs {
		go func() {
			for {
				msgs, err := s.Receive(ctx, 5)
				if err == nil {
					err = s.Ack(ctx, drivertest.AckIDs(msgs))
				}
				if err != nil {
					errs <- err
					return
				}
				for _, m := range msgs {
					select {
					case got <- receipt{i, m}:
					case <-ctx.Done():
					}
				}
			}
		}()
	}
	byKey := make(map[string][]string)
	owner := make(map[string]int)
	for range sent {
		select {
		case r := <-got:
			if o, ok := owner[r.m.Key]; ok && o != r.sub {
				t.Errorf("key %s went to consumers %d and %d", r.m.Key, o, r.sub)
			}
			owner[r.m.Key] = r.sub
			byKey[r.m.Key] = append(byKey[r.m.Key], r.m.Attributes["id"])
		case err := <-errs:
			t.Fatalf("a consumer stopped: %v", err)
		}
	}
	cancel()
	for range subs {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("consumer ended with %v, want context.Canceled", err)
		}
	}
	want := make(map[string][]string)
	for _, m := range sent {
		want[m.Key] = append(want[m.Key], m.Attributes["id"])
	}
	if diff := cmp.Diff(want, byKey); diff != "" {
		t.Errorf("received by key, in order (-sent +received):\n%s", diff)
	}
}

// TestBrokerHangs freezes the connections under a Topic and a
// Subscription: Send and Ack return retryable errors when their context
// ends, although the broker never answers.
func TestBrokerHangs(t *testing.T) {
	addr, q := brokerAddr(t), uniqueQueue()
	proxy := faultnet.NewProxy(t, addr)
	dial := stomppubsub.DialOptions{HeartBeat: time.Second}
	topic := openTopicWith(t, proxy.Addr(), q, &stomppubsub.TopicOptions{Dial: dial})
	sub := openSub(t, proxy.Addr(), q, &stomppubsub.SubscriptionOptions{Dial: dial})
	if err := topic.Send(t.Context(), []*driver.Message{message(1)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	received := drivertest.ReceiveN(t, sub, 1)

	proxy.Freeze()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, call := range []struct {
		name string
		f    func(context.Context) error
	}{
		{"Send", func(ctx context.Context) error { return topic.Send(ctx, []*driver.Message{message(2)}) }},
		{"Ack", func(ctx context.Context) error { return sub.Ack(ctx, drivertest.AckIDs(received)) }},
	} {
		callCtx, callCancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := call.f(callCtx)
		callCancel()
		if !errors.Is(err, context.DeadlineExceeded) || !topic.IsRetryable(err) {
			t.Errorf("%s to a hung broker = %v, want a retryable context.DeadlineExceeded", call.name, err)
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("the calls outlived their contexts")
	}
	// The message whose ack did not get through comes back.
	direct := openSub(t, addr, q, nil)
	again := drivertest.ReceiveN(t, direct, 1)
	if err := direct.Ack(t.Context(), drivertest.AckIDs(again)); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

// silent keeps the plain go-stomp client of a test from logging.
type silent struct{}

func (silent) Debugf(string, ...any)   {}
func (silent) Infof(string, ...any)    {}
func (silent) Warningf(string, ...any) {}
func (silent) Errorf(string, ...any)   {}
func (silent) Debug(string)            {}
func (silent) Info(string)             {}
func (silent) Warning(string)          {}
func (silent) Error(string)            {}

// TestSubscribeToBacklog subscribes to a queue that already holds more
// messages than go-stomp buffers per subscription.
func TestSubscribeToBacklog(t *testing.T) {
	addr, q := brokerAddr(t), uniqueQueue()
	var sent []*driver.Message
	for i := range 80 {
		sent = append(sent, message(i))
	}
	if err := openTopic(t, addr, q).Send(t.Context(), sent); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sub := openSub(t, addr, q, &stomppubsub.SubscriptionOptions{Prefetch: 50})
	var got []*driver.Message
	for len(got) < len(sent) {
		msgs := drivertest.ReceiveN(t, sub, min(50, len(sent)-len(got)))
		if err := sub.Ack(t.Context(), drivertest.AckIDs(msgs)); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		got = append(got, msgs...)
	}
	if diff := cmp.Diff(sent, got, ignoreReceived); diff != "" {
		t.Errorf("received (-sent +got):\n%s", diff)
	}
}

// TestMaxHeaderLength: a message whose longest header line (escapes
// counted) is DefaultMaxHeaderLength is sent and received; one byte more
// fails the Send with ErrTooLarge, not retryable, before anything is sent,
// and the topic goes on working. ActiveMQ would otherwise close the
// connection, which Send reported as a retryable connection loss.
func TestMaxHeaderLength(t *testing.T) {
	addr := brokerAddr(t)
	q := uniqueQueue()
	sub := openSub(t, addr, q, nil)
	topic := openTopic(t, addr, q)
	const name = stomppubsub.HeaderPrefix + "fjordlong"
	fill := func(i, extra int) *driver.Message {
		m := message(i)
		n := stomppubsub.DefaultMaxHeaderLength - len(name) - 1 + extra
		m.Attributes["fjordlong"] = strings.Repeat(":", 100) + strings.Repeat("x", n-200) // ':' is escaped to 2 bytes
		return m
	}
	err := topic.Send(t.Context(), []*driver.Message{fill(1, 1)})
	if !errors.Is(err, stomppubsub.ErrTooLarge) || topic.IsRetryable(err) {
		t.Errorf("Send with a header line one byte too long: %v (retryable %v), want ErrTooLarge, not retryable", err, topic.IsRetryable(err))
	}
	fits := fill(2, 0)
	if err := topic.Send(t.Context(), []*driver.Message{fits}); err != nil {
		t.Fatalf("Send with a header line of DefaultMaxHeaderLength: %v", err)
	}
	got := drivertest.ReceiveN(t, sub, 1)[0]
	if got.Attributes["id"] != "id-2" || got.Attributes["fjordlong"] != fits.Attributes["fjordlong"] {
		t.Errorf("received id %q with a %d-byte fjordlong, want id-2 with %d bytes", got.Attributes["id"], len(got.Attributes["fjordlong"]), len(fits.Attributes["fjordlong"]))
	}
	if err := sub.Ack(t.Context(), []driver.AckID{got.AckID}); err != nil {
		t.Fatal(err)
	}
}
