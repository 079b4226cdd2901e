package kafkapubsub_test

import (
	"context"
	"fmt"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/driver"
)

// benchMessages returns n messages of 256 bytes of data with 64 keys.
func benchMessages(start, n int) []*driver.Message {
	data := make([]byte, 256)
	msgs := make([]*driver.Message, n)
	for i := range msgs {
		m := msg(start+i, "key-"+strconv.Itoa((start+i)%64))
		m.Data = data
		msgs[i] = m
	}
	return msgs
}

// BenchmarkSend measures Send (acks=all, idempotent) to a four-partition
// topic on an in-process kfake cluster, one batch per call.
func BenchmarkSend(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			br := newKfake(b)
			tp := br.openTopic(b, br.topic(b, 4))
			msgs := benchMessages(0, batch)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if err := tp.Send(ctx, msgs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkReceiveAck measures a group member receiving up to max messages
// at a time and acknowledging each batch (one offset commit per batch), from
// a four-partition topic on kfake filled beforehand.
func BenchmarkReceiveAck(b *testing.B) {
	for _, max := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("max=%d", max), func(b *testing.B) {
			br := newKfake(b)
			topic := br.topic(b, 4)
			tp := br.openTopic(b, topic)
			total := b.N * max
			for i := 0; i < total; i += 1000 {
				send(b, tp, benchMessages(i, min(1000, total-i))...)
			}
			sub := br.openSub(b, unique("g"), topic)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b.ResetTimer()
			for got := 0; got < total; {
				msgs, err := sub.Receive(ctx, max)
				if err != nil {
					b.Fatal(err)
				}
				if err := sub.Ack(ctx, drivertest.AckIDs(msgs)); err != nil {
					b.Fatal(err)
				}
				got += len(msgs)
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkPublishRoute is the whole pipeline over kfake: pubsub.Topic
// publishes batches of 100 messages over 256 keys, and a pubsub.Router with
// 8 workers handles and acknowledges every one (per-key order, batched
// acks, one offset commit per ack batch).
func BenchmarkPublishRoute(b *testing.B) {
	br := newKfake(b)
	topicName := br.topic(b, 4)
	tp := br.openTopic(b, topicName)
	topic := pubsub.NewTopic(tp, nil)
	defer topic.Close()
	sub := br.openSub(b, unique("g"), topicName)
	var handled atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	r := pubsub.NewRouter(sub, &pubsub.RouterOptions{Concurrency: 8})
	r.Handle("order.placed", func(ctx context.Context, m *pubsub.Message) error {
		if handled.Add(1) == target {
			close(done)
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- r.Run(ctx) }()
	data := make([]byte, 256)
	b.ResetTimer()
	batch := make([]*pubsub.Message, 0, 100)
	for i := range b.N {
		batch = append(batch, &pubsub.Message{ID: strconv.Itoa(i), Source: "/bench", Type: "order.placed",
			Key: "k" + strconv.Itoa(i%256), Data: data})
		if len(batch) == cap(batch) || i == b.N-1 {
			if err := topic.Publish(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	cancel()
	<-stopped
}
