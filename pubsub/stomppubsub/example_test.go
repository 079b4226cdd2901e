package stomppubsub_test

import (
	"context"
	"log"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/stomppubsub"
)

// Fan-out on ActiveMQ Classic: the orders virtual topic, and the billing
// service's own durable queue of it.
func Example() {
	ctx := context.Background()
	const addr = "127.0.0.1:61613"
	topic, err := stomppubsub.OpenTopic(ctx, addr, stomppubsub.VirtualTopic("orders"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer topic.Close()
	sub, err := stomppubsub.OpenSubscription(ctx, addr, stomppubsub.VirtualTopicQueue("billing", "orders"),
		&stomppubsub.SubscriptionOptions{Dial: stomppubsub.DialOptions{Login: "billing", Passcode: "secret"}})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	var _ driver.Topic = topic // hand both to package pubsub
	var _ driver.Subscription = sub
}
