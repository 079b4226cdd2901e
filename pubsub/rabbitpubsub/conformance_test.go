package rabbitpubsub_test

import (
	"context"
	"testing"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"github.com/fjord-data/fjord/pubsub/rabbitpubsub"
)

var (
	_ driver.Pinger = (*rabbitpubsub.Topic)(nil)
	_ driver.Pinger = (*rabbitpubsub.Subscription)(nil)
)

// TestConformance runs the broker conformance suite: each test gets a
// fresh topic exchange and one quorum queue per subscription name, all
// deleted at cleanup.
func TestConformance(t *testing.T) {
	c := dial(t, brokerURL(t))
	ch := admin(t)                                            // opened before Run: its goroutines are not leaks
	opts := &rabbitpubsub.SubscriptionOptions{Prefetch: 1000} // the suite receives hundreds before acking
	drivertest.Run(t, drivertest.Harness{
		Features: rabbitpubsub.Features(opts),
		NewDestination: func(ctx context.Context, t *testing.T, subs []string) (*drivertest.Destination, error) {
			exchange := unique("fjord-conf-x")
			queue := func(name string) string { return exchange + "." + name }
			t.Cleanup(func() {
				for _, name := range subs {
					_, _ = ch.QueueDelete(queue(name), false, false, false)
				}
				_ = ch.ExchangeDelete(exchange, false, false)
			})
			topic, err := c.OpenTopic(ctx, exchange, nil)
			if err != nil {
				return nil, err
			}
			_ = topic.Close()
			for _, name := range subs {
				s, err := c.OpenSubscription(ctx, exchange, queue(name), opts)
				if err != nil {
					return nil, err
				}
				_ = s.Close() // the queue stays
			}
			return &drivertest.Destination{
				Topic: func(ctx context.Context) (driver.Topic, error) {
					return c.OpenTopic(ctx, exchange, &rabbitpubsub.TopicOptions{Passive: true})
				},
				Subscription: func(ctx context.Context, name string) (driver.Subscription, error) {
					return c.OpenSubscription(ctx, exchange, queue(name), &rabbitpubsub.SubscriptionOptions{Passive: true, Prefetch: opts.Prefetch})
				},
			}, nil
		},
	})
}
