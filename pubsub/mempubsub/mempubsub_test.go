package mempubsub_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"github.com/fjord-data/fjord/pubsub/mempubsub"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	b := mempubsub.New(nil)
	drivertest.Run(t, drivertest.Harness{
		Features:       mempubsub.Features,
		NewDestination: harness(b),
	})
}

// harness makes one topic per test, named after it, with the durable
// subscriptions asked for.
func harness(b *mempubsub.Broker) func(context.Context, *testing.T, []string) (*drivertest.Destination, error) {
	return func(_ context.Context, t *testing.T, subs []string) (*drivertest.Destination, error) {
		topic := t.Name()
		for _, s := range subs {
			b.CreateSubscription(topic, s)
		}
		t.Cleanup(func() {
			for _, s := range subs {
				b.DeleteSubscription(topic, s)
			}
		})
		return &drivertest.Destination{
			Topic: func(context.Context) (driver.Topic, error) { return b.Topic(topic), nil },
			Subscription: func(_ context.Context, name string) (driver.Subscription, error) {
				return b.Subscription(topic, name), nil
			},
		}, nil
	}
}

// Compile-time guards.
var (
	_ driver.Topic        = (*mempubsub.Topic)(nil)
	_ driver.Subscription = (*mempubsub.Subscription)(nil)
)
