package pubsub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/mempubsub"
)

// A service publishes an event and another consumes it; a message it
// cannot decode is parked and then listed.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := mempubsub.New(nil)
	b.CreateSubscription("orders", "billing")
	b.CreateSubscription("orders.parked", "ops")

	topic := pubsub.NewTopic(b.Topic("orders"), nil)
	defer topic.Close()

	done := make(chan struct{})
	r := pubsub.NewRouter(b.Subscription("orders", "billing"), &pubsub.RouterOptions{
		Consumer: "billing", Topic: "orders", Park: b.Topic("orders.parked"),
		Hooks: pubsub.RouterHooks{OnParked: func(pubsub.ParkInfo) { close(done) }},
	})
	r.Handle("shop.order.placed", func(ctx context.Context, m *pubsub.Message) error {
		var o struct{ Total int }
		if err := json.Unmarshal(m.Data, &o); err != nil {
			return pubsub.Permanent(err)
		}
		fmt.Println("billing", m.Subject, o.Total)
		return nil
	})
	stopped := make(chan error, 1)
	go func() { stopped <- r.Run(ctx) }()

	err := topic.Publish(ctx,
		&pubsub.Message{ID: "1", Source: "/shop/orders", Type: "shop.order.placed", Subject: "order/42", Data: []byte(`{"Total":1200}`)},
		&pubsub.Message{ID: "2", Source: "/shop/orders", Type: "shop.order.placed", Subject: "order/42", Data: []byte(`not json`)},
	)
	if err != nil {
		fmt.Println(err)
	}
	<-done
	cancel()
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		fmt.Println(err)
	}

	parked := pubsub.NewParked(b.Subscription("orders.parked", "ops"), &pubsub.ParkedOptions{IdleWait: 100 * time.Millisecond})
	defer parked.Close()
	for pm, err := range parked.List(context.Background()) {
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println("parked", pm.Message.ID, pm.Attempts, pm.Reason)
	}
	// Output:
	// billing order/42 1200
	// parked 2 1 poison: permanent: invalid character 'o' in literal null (expecting 'u')
}
