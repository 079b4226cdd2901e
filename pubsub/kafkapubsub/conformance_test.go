package kafkapubsub_test

import (
	"context"
	"testing"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"github.com/fjord-data/fjord/pubsub/kafkapubsub"
)

// TestConformance runs the broker conformance suite on an in-process kfake
// cluster, and on the broker FJORD_TEST_KAFKA names when it is set.
func TestConformance(t *testing.T) {
	eachBroker(t, func(t *testing.T, b *broker) {
		drivertest.Run(t, harness(b))
	})
}

// harness gives each test a fresh topic of three partitions, deleted at
// cleanup; a durable subscription is a consumer group named after the test
// and the subscription, which starts at the beginning of the topic and so
// keeps every message sent before its first member joins.
func harness(b *broker) drivertest.Harness {
	return drivertest.Harness{
		Features: kafkapubsub.Features,
		NewDestination: func(ctx context.Context, t *testing.T, subs []string) (*drivertest.Destination, error) {
			topic := b.topic(t, 3)
			prefix := unique("g")
			return &drivertest.Destination{
				Topic: func(context.Context) (driver.Topic, error) {
					return kafkapubsub.OpenTopic(b.seeds, topic, nil)
				},
				Subscription: func(_ context.Context, name string) (driver.Subscription, error) {
					return kafkapubsub.OpenSubscription(b.seeds, prefix+"-"+name, topic, nil)
				},
			}, nil
		},
	}
}

// Compile-time guards.
var (
	_ driver.Topic        = (*kafkapubsub.Topic)(nil)
	_ driver.Subscription = (*kafkapubsub.Subscription)(nil)
	_ driver.Pinger       = (*kafkapubsub.Topic)(nil)
	_ driver.Pinger       = (*kafkapubsub.Subscription)(nil)
)
