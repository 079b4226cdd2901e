package pubsub_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/mempubsub"
)

// BenchmarkPublish measures concurrent single-message Publish calls
// coalesced into batched Sends on mempubsub.
func BenchmarkPublish(b *testing.B) {
	broker := mempubsub.New(&mempubsub.Options{DedupWindow: -1})
	topic := pubsub.NewTopic(broker.Topic("orders"), nil)
	defer topic.Close()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := n.Add(1)
			if err := topic.Publish(ctx, event("order.placed", fmt.Sprint("k", i%64), int(i))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkPublishRoute measures end to end: messages published in
// batches of 100 over 256 keys and handled by a Router with 8 workers,
// until every one is acknowledged.
func BenchmarkPublishRoute(b *testing.B) {
	broker := mempubsub.New(&mempubsub.Options{DedupWindow: -1})
	broker.CreateSubscription("orders", "billing")
	topic := pubsub.NewTopic(broker.Topic("orders"), nil)
	defer topic.Close()
	sub := broker.Subscription("orders", "billing")
	defer sub.Close()
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
	b.ReportAllocs()
	b.ResetTimer()
	batch := make([]*pubsub.Message, 0, 100)
	for i := range b.N {
		batch = append(batch, event("order.placed", fmt.Sprint("k", i%256), i))
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
