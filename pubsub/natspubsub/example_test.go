package natspubsub_test

import (
	"context"
	"fmt"
	"log"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/natspubsub"
	"github.com/fjord-data/fjord/pubsub/natspubsub/natsembed"
)

// An embedded server, a topic that ensures its stream, and a Router that
// handles what the topic publishes.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := natsembed.Start(ctx, nil) // in process, temporary store
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	nc, err := srv.Connect()
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	dt, err := natspubsub.OpenTopic(ctx, nc, "shop.orders", &natspubsub.TopicOptions{
		Stream: &jetstream.StreamConfig{Name: "SHOP"}})
	if err != nil {
		log.Fatal(err)
	}
	topic := pubsub.NewTopic(dt, nil)
	defer topic.Close()
	ds, err := natspubsub.OpenSubscription(ctx, nc, "shop.orders", "billing", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()

	err = topic.Publish(ctx, &pubsub.Message{ID: "o-42-placed", Source: "/shop/orders", Type: "shop.order.placed",
		Subject: "order/42", Data: []byte(`{"total":1200}`)})
	if err != nil {
		log.Fatal(err)
	}
	r := pubsub.NewRouter(ds, &pubsub.RouterOptions{Consumer: "billing", Topic: "shop.orders"})
	r.Handle("shop.order.placed", func(ctx context.Context, m *pubsub.Message) error {
		fmt.Printf("%s %s %s\n", m.Type, m.Subject, m.Data)
		cancel() // one message is enough here
		return nil
	})
	if err := r.Run(ctx); err != context.Canceled {
		log.Fatal(err)
	}
	// Output: shop.order.placed order/42 {"total":1200}
}
