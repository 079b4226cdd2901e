package rabbitpubsub_test

import (
	"context"
	"log"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/rabbitpubsub"
)

// A topic exchange, and a quorum queue of the billing service bound to
// the order events, parked by the broker in "shop.dead" after 50 failed
// deliveries.
func Example() {
	ctx := context.Background()
	conn, err := rabbitpubsub.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	topic, err := conn.OpenTopic(ctx, "shop.orders", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer topic.Close()
	opts := &rabbitpubsub.SubscriptionOptions{BindingKeys: []string{"shop.order.#"},
		DeliveryLimit: 50, DeadLetterExchange: "shop.dead"}
	sub, err := conn.OpenSubscription(ctx, "shop.orders", "billing.orders", opts)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	var _ driver.Topic = topic // hand both to package pubsub
	var _ driver.Subscription = sub
	log.Printf("features: %+v", rabbitpubsub.Features(opts))
}
