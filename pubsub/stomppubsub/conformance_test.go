package stomppubsub_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"github.com/fjord-data/fjord/pubsub/stomppubsub"
)

var (
	_ driver.Pinger = (*stomppubsub.Topic)(nil)
	_ driver.Pinger = (*stomppubsub.Subscription)(nil)
)

// TestConformance runs the broker conformance suite on ActiveMQ Classic:
// each test sends to a fresh virtual topic, and each subscription name is
// a consumer queue of it, created before the test sends (the broker
// copies a message only into consumer queues that exist).
func TestConformance(t *testing.T) {
	addr := brokerAddr(t)
	opts := &stomppubsub.SubscriptionOptions{Prefetch: 1000}
	drivertest.Run(t, drivertest.Harness{
		Features: stomppubsub.Features(opts),
		NewDestination: func(ctx context.Context, t *testing.T, subs []string) (*drivertest.Destination, error) {
			name := "fjord-conf-" + rand.Text()[:10]
			for _, sub := range subs {
				s, err := stomppubsub.OpenSubscription(ctx, addr, stomppubsub.VirtualTopicQueue(sub, name), opts)
				if err != nil {
					return nil, err
				}
				if err := s.Close(); err != nil { // the queue stays
					return nil, err
				}
			}
			return &drivertest.Destination{
				Topic: func(ctx context.Context) (driver.Topic, error) {
					return stomppubsub.OpenTopic(ctx, addr, stomppubsub.VirtualTopic(name), nil)
				},
				Subscription: func(ctx context.Context, sub string) (driver.Subscription, error) {
					return stomppubsub.OpenSubscription(ctx, addr, stomppubsub.VirtualTopicQueue(sub, name), opts)
				},
			}, nil
		},
	})
}
