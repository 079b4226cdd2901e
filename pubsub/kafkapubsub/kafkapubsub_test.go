package kafkapubsub_test

import (
	"context"
	"errors"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/kafkapubsub"
)

func TestRoundTrip(t *testing.T) {
	eachBroker(t, func(t *testing.T, b *broker) {
		topic := b.topic(t, 1)
		tp := b.openTopic(t, topic)
		want := []*driver.Message{
			{
				Attributes: map[string]string{
					"id": "1", "source": "/shop/orders", "type": "shop.order.placed", "specversion": "1.0",
					"subject": "order/42", "time": "2026-11-25T10:00:00.123456789Z", "datacontenttype": "application/json",
					"dataschema": "https://example.com/s.json", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
					"sequence": "7",
				},
				Key:  "order/42",
				Data: []byte(`{"total":42}`),
			},
			{Attributes: map[string]string{"id": "2", "source": "/s", "type": "t", "specversion": "1.0"}, Key: "k", Data: []byte{0, 1, 2, 255}},
			{Attributes: map[string]string{"id": "3", "source": "/s", "type": "t", "specversion": "1.0"}, Key: "", Data: nil},
			{Attributes: map[string]string{"id": "4", "source": "/s", "type": "t", "specversion": "1.0", "partitionkey": "other"}, Key: "k2", Data: []byte("x")},
		}
		before := time.Now().Add(-time.Minute)
		send(t, tp, want...)
		sub := b.openSub(t, unique("g"), topic)
		got := drivertest.ReceiveN(t, sub, len(want))
		for _, m := range got {
			if m.PublishTime.Before(before) || m.Deliveries != 0 || m.AckID == nil {
				t.Errorf("message %s: PublishTime %v, Deliveries %d, AckID %v; want a recent time, 0, an AckID",
					m.Attributes["id"], m.PublishTime, m.Deliveries, m.AckID)
			}
		}
		opt := cmpopts.IgnoreFields(driver.Message{}, "AckID", "PublishTime")
		if diff := cmp.Diff(want, got, opt, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("round trip (-sent +received):\n%s", diff)
		}
	})
}

// TestBinaryContentMode reads what Topic writes with a plain client: the
// CloudEvents Kafka binding in binary mode.
func TestBinaryContentMode(t *testing.T) {
	b := newKfake(t)
	topic := b.topic(t, 1)
	tp := b.openTopic(t, topic)
	m := msg(1, "order/42")
	m.Attributes["datacontenttype"] = "application/json"
	send(t, tp, m)

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.seeds...), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fetches := cl.PollRecords(ctx, 1)
	if err := fetches.Err(); err != nil {
		t.Fatal(err)
	}
	r := fetches.Records()[0]
	headers := map[string]string{}
	for _, h := range r.Headers {
		headers[h.Key] = string(h.Value)
	}
	want := map[string]string{
		"ce_id": "1", "ce_source": "/test", "ce_type": "test.event", "ce_specversion": "1.0",
		"content-type": "application/json", "ce_partitionkey": "order/42",
	}
	if diff := cmp.Diff(want, headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if string(r.Key) != "order/42" || string(r.Value) != `{"n":1}` {
		t.Errorf("key %q value %q, want the message's key and data as is", r.Key, r.Value)
	}
}

// TestAckOutOfOrderThenReopen is the crash-ish test: acknowledge some
// messages out of order, close without acknowledging the rest, reopen the
// group: every unacknowledged message comes back and no acknowledged one.
func TestAckOutOfOrderThenReopen(t *testing.T) {
	eachBroker(t, func(t *testing.T, b *broker) {
		topic, sent := b.filled(t, 2, 20, 5)
		group := unique("g")

		sub := b.openSub(t, group, topic)
		got := drivertest.ReceiveN(t, sub, len(sent))
		var unacked []string
		// Acknowledge every third message, last first.
		for i := len(got) - 1; i >= 0; i-- {
			if i%3 == 1 {
				ack(t, sub, got[i])
			} else {
				unacked = append(unacked, got[i].Attributes["id"])
			}
		}
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}

		sub2 := b.openSub(t, group, topic)
		again := drivertest.ReceiveN(t, sub2, len(unacked))
		quiet(t, sub2)
		if diff := cmp.Diff(sorted(unacked), sorted(ids(again))); diff != "" {
			t.Errorf("after reopening (-unacknowledged +received again):\n%s", diff)
		}
		// Acknowledge half of them in order, half out of order; reopen once
		// more: the rest, and only the rest, comes a third time.
		ack(t, sub2, again[:len(again)/2]...)
		sub2.Close()
		sub3 := b.openSub(t, group, topic)
		third := drivertest.ReceiveN(t, sub3, len(again)-len(again)/2)
		quiet(t, sub3)
		if diff := cmp.Diff(sorted(ids(again[len(again)/2:])), sorted(ids(third))); diff != "" {
			t.Errorf("after reopening twice (-unacknowledged +received again):\n%s", diff)
		}
		ack(t, sub3, third...)
		sub3.Close()
		sub4 := b.openSub(t, group, topic)
		quiet(t, sub4)
	})
}

func TestNackRedelivers(t *testing.T) {
	eachBroker(t, func(t *testing.T, b *broker) {
		topic := b.topic(t, 1)
		tp := b.openTopic(t, topic)
		for n := range 6 {
			send(t, tp, msg(n, "k"))
		}
		group := unique("g")
		sub := b.openSub(t, group, topic)
		got := drivertest.ReceiveN(t, sub, 6)
		if err := sub.Nack(context.Background(), drivertest.AckIDs([]*driver.Message{got[2], got[4]})); err != nil {
			t.Fatal(err)
		}
		ack(t, sub, got[0], got[1], got[3])
		again := drivertest.ReceiveN(t, sub, 2)
		if diff := cmp.Diff([]string{"2", "4"}, ids(again)); diff != "" {
			t.Errorf("after Nack (-want +got):\n%s", diff)
		}
		quiet(t, sub)
		// Message 5 was neither acknowledged nor nacked: it comes back only
		// after the subscription closes; 2 and 4 are acknowledged now.
		ack(t, sub, again...)
		sub.Close()
		sub2 := b.openSub(t, group, topic)
		if diff := cmp.Diff([]string{"5"}, ids(drivertest.ReceiveN(t, sub2, 1))); diff != "" {
			t.Errorf("after reopening (-want +got):\n%s", diff)
		}
		quiet(t, sub2)
	})
}

func TestNackWakesReceive(t *testing.T) {
	b := newKfake(t)
	topic := b.topic(t, 1)
	tp := b.openTopic(t, topic)
	send(t, tp, msg(0, "k"))
	sub := b.openSub(t, unique("g"), topic)
	first := drivertest.ReceiveN(t, sub, 1)
	type result struct {
		msgs []*driver.Message
		err  error
	}
	done := make(chan result)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		msgs, err := sub.Receive(ctx, 1)
		done <- result{msgs, err}
	}()
	// The Receive above may or may not be polling yet: either way the Nack
	// must reach it.
	if err := sub.Nack(context.Background(), drivertest.AckIDs(first)); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	if diff := cmp.Diff([]string{"0"}, ids(got.msgs)); diff != "" {
		t.Errorf("after Nack (-want +got):\n%s", diff)
	}
}

// TestPerKeyOrder sends interleaved keys to a topic of four partitions in
// several batches: each key's messages arrive in the order sent.
func TestPerKeyOrder(t *testing.T) {
	eachBroker(t, func(t *testing.T, b *broker) {
		topic := b.topic(t, 4)
		tp := b.openTopic(t, topic)
		keys := []string{"a", "b", "c", "d", "e", "f"}
		const perKey = 40
		n := 0
		for range 8 {
			var msgs []*driver.Message
			for range perKey / 8 {
				for _, k := range keys {
					msgs = append(msgs, msg(n, k))
					n++
				}
			}
			send(t, tp, msgs...)
		}
		sub := b.openSub(t, unique("g"), topic)
		got := drivertest.ReceiveN(t, sub, n)
		byKey := map[string][]int{}
		partitions := map[int32]bool{}
		for _, m := range got {
			id, _ := strconv.Atoi(m.Attributes["id"])
			byKey[m.Key] = append(byKey[m.Key], id)
			partitions[kafkapubsub.PartitionOf(m.AckID)] = true
		}
		for k, seq := range byKey {
			if !sort.IntsAreSorted(seq) || len(seq) != perKey {
				t.Errorf("key %s: received %v, want %d messages in send order", k, seq, perKey)
			}
		}
		if len(partitions) < 2 {
			t.Errorf("every key went to one partition (%v): the test does not cross partitions", partitions)
		}
	})
}

// TestBrokerDown closes the cluster: Send fails within its context with a
// retryable error that says so.
func TestBrokerDown(t *testing.T) {
	b, _, tp := goingDown(t)
	b.kfake.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := tp.Send(ctx, []*driver.Message{msg(1, "k")})
	if err == nil {
		t.Fatal("Send to a closed cluster succeeded")
	}
	if !tp.IsRetryable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send = %v (retryable %v), want a retryable error matching context.DeadlineExceeded", err, tp.IsRetryable(err))
	}
	t.Log(err)
}

func TestSendTooLargeIsNotRetryable(t *testing.T) {
	b := newKfake(t)
	topic := b.topic(t, 1)
	tp := b.openTopic(t, topic)
	m := msg(0, "k")
	m.Data = make([]byte, 2<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := tp.Send(ctx, []*driver.Message{m})
	if err == nil || tp.IsRetryable(err) {
		t.Errorf("Send of a 2 MiB record = %v (retryable %v), want a non-retryable error", err, tp.IsRetryable(err))
	}
}

func TestReceiveBlocksUntilCancel(t *testing.T) {
	b := newKfake(t)
	topic := b.topic(t, 1)
	sub := b.openSub(t, unique("g"), topic)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := sub.Receive(ctx, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Receive on an empty topic = %v, want context.DeadlineExceeded", err)
	}
}

func TestReceiveMax(t *testing.T) {
	b := newKfake(t)
	topic := b.topic(t, 1)
	tp := b.openTopic(t, topic)
	var msgs []*driver.Message
	for n := range 10 {
		msgs = append(msgs, msg(n, "k"))
	}
	send(t, tp, msgs...)
	sub := b.openSub(t, unique("g"), topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for total := 0; total < 10; {
		got, err := sub.Receive(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < 1 || len(got) > 3 {
			t.Fatalf("Receive(max 3) returned %d messages", len(got))
		}
		total += len(got)
	}
}

func TestAfterClose(t *testing.T) {
	b := newKfake(t)
	topic := b.topic(t, 1)
	tp := b.openTopic(t, topic)
	sub := b.openSub(t, unique("g"), topic)
	for range 2 {
		if err := tp.Close(); err != nil {
			t.Fatal(err)
		}
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := tp.Send(ctx, []*driver.Message{msg(0, "k")}); !errors.Is(err, kafkapubsub.ErrClosed) || tp.IsRetryable(err) {
		t.Errorf("Send after Close = %v, want ErrClosed, not retryable", err)
	}
	if _, err := sub.Receive(ctx, 1); !errors.Is(err, kafkapubsub.ErrClosed) {
		t.Errorf("Receive after Close = %v, want ErrClosed", err)
	}
	if err := sub.Ack(ctx, nil); !errors.Is(err, kafkapubsub.ErrClosed) {
		t.Errorf("Ack after Close = %v, want ErrClosed", err)
	}
}

func TestCloseStopsReceive(t *testing.T) {
	b := newKfake(t)
	topic := b.topic(t, 1)
	sub := b.openSub(t, unique("g"), topic)
	done := make(chan error)
	go func() {
		_, err := sub.Receive(context.Background(), 1)
		done <- err
	}()
	// Receive may not have started polling yet; Close must stop it either way.
	sub.Close()
	if err := <-done; !errors.Is(err, kafkapubsub.ErrClosed) {
		t.Errorf("Receive during Close = %v, want ErrClosed", err)
	}
}

func TestCreateTopicExists(t *testing.T) {
	b := newKfake(t)
	topic := b.topic(t, 3)
	err := kafkapubsub.CreateTopic(context.Background(), b.admin, topic, kafkapubsub.TopicConfig{Partitions: 3})
	if !errors.Is(err, kafkapubsub.ErrTopicExists) {
		t.Errorf("CreateTopic of an existing topic = %v, want ErrTopicExists", err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return s
}

// TestRebalance adds a second member while the first holds messages: the
// partitions that move are committed on revocation, so the new member gets
// their unacknowledged messages and none that were acknowledged; the first
// member's later acks for partitions it lost do not commit.
func TestRebalance(t *testing.T) {
	eachBroker(t, func(t *testing.T, b *broker) {
		topic, sent := b.filled(t, 4, 40, 40)
		group := unique("g")

		a := b.openSub(t, group, topic)
		held := drivertest.ReceiveN(t, a, len(sent))
		ackedFirst := map[string]bool{}
		for i := len(held) - 1; i >= 0; i-- {
			if i%3 == 0 {
				ack(t, a, held[i])
				ackedFirst[held[i].Attributes["id"]] = true
			}
		}

		// The second member's first message means the rebalance is done.
		bm := b.openSub(t, group, topic)
		got := append(drivertest.ReceiveN(t, bm, 1), drain(bm)...)
		ack(t, bm, got...)
		partsB := map[int32]bool{}
		for _, m := range got {
			partsB[kafkapubsub.PartitionOf(m.AckID)] = true
			if ackedFirst[m.Attributes["id"]] {
				t.Errorf("message %s was acknowledged before the rebalance and came again", m.Attributes["id"])
			}
		}
		if len(partsB) == 0 || len(partsB) == 4 {
			t.Fatalf("the second member got messages of partitions %v, want some of the four", partsB)
		}
		// The first member acknowledges the rest of what it held, the lost
		// partitions' messages included (those acks are dropped).
		var rest []*driver.Message
		for _, m := range held {
			if !ackedFirst[m.Attributes["id"]] {
				rest = append(rest, m)
			}
		}
		ack(t, a, rest...)
		a.Close()
		bm.Close()

		// Everything is acknowledged now: a third member gets nothing.
		c := b.openSub(t, group, topic)
		quiet(t, c)
	})
}

// TestRevokeCommitsFailedAcks acknowledges with a context that has ended, so
// the commit fails; the acknowledgements stay recorded and the revocation
// when the subscription closes commits them.
func TestRevokeCommitsFailedAcks(t *testing.T) {
	eachBroker(t, func(t *testing.T, b *broker) {
		topic, sent := b.filled(t, 2, 10, 10)
		group := unique("g")
		sub := b.openSub(t, group, topic)
		got := drivertest.ReceiveN(t, sub, len(sent))
		ended, cancel := context.WithCancel(context.Background())
		cancel()
		if err := sub.Ack(ended, drivertest.AckIDs(got[:7])); err == nil {
			t.Fatal("Ack with an ended context succeeded: the test needs its commit to fail")
		} else if !sub.IsRetryable(err) && !errors.Is(err, context.Canceled) {
			t.Fatalf("Ack = %v, want the context's error", err)
		}
		sub.Close()
		sub2 := b.openSub(t, group, topic)
		again := drivertest.ReceiveN(t, sub2, 3)
		quiet(t, sub2)
		if diff := cmp.Diff(sorted(ids(got[7:])), sorted(ids(again))); diff != "" {
			t.Errorf("after reopening (-unacknowledged +received again):\n%s", diff)
		}
	})
}

// TestBrokerDownSubscription closes the cluster under a member holding a
// message: Ack fails with a retryable error, Close still returns and
// leaves no goroutine behind (TestMain checks).
func TestBrokerDownSubscription(t *testing.T) {
	b, topic, tp := goingDown(t)
	sub := b.openSub(t, unique("g"), topic)
	got := drivertest.ReceiveN(t, sub, 1)
	b.kfake.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := sub.Ack(ctx, drivertest.AckIDs(got))
	if err == nil || !sub.IsRetryable(err) {
		t.Errorf("Ack with the cluster down = %v (retryable %v), want a retryable error", err, sub.IsRetryable(err))
	}
	if err := sub.Close(); err != nil {
		t.Error(err)
	}
	if err := tp.Close(); err != nil {
		t.Error(err)
	}
}

// goingDown starts a kfake cluster for a test that closes it: a topic (not
// deleted at cleanup, the cluster is gone by then) holding one message.
func goingDown(t *testing.T) (*broker, string, *kafkapubsub.Topic) {
	t.Helper()
	b := newKfake(t)
	topic := unique("fjord-test")
	if err := kafkapubsub.CreateTopic(context.Background(), b.admin, topic, kafkapubsub.TopicConfig{}); err != nil {
		t.Fatal(err)
	}
	tp := b.openTopic(t, topic)
	send(t, tp, msg(0, "k"))
	return b, topic, tp
}

// TestStartAtEnd: a new group with StartAtEnd skips what was sent before
// it joined. Messages are sent until one arrives, since joining takes a
// moment; the one sent before opening never does.
func TestStartAtEnd(t *testing.T) {
	b := newKfake(t)
	topic, _ := b.filled(t, 1, 1, 1)
	tp := b.openTopic(t, topic)
	sub, err := kafkapubsub.OpenSubscription(b.seeds, unique("g"), topic, &kafkapubsub.SubscriptionOptions{StartAtEnd: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for n := 1; ; n++ {
		if n > 100 {
			t.Fatal("no message arrived after 100 sends")
		}
		send(t, tp, msg(n, "k"))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		got, err := sub.Receive(ctx, 100)
		cancel()
		if err != nil {
			continue
		}
		if slices.Contains(ids(got), "0") {
			t.Fatalf("received %v: message 0 was sent before the group joined", ids(got))
		}
		return
	}
}
