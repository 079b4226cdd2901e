package kafkapubsub_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/kafkapubsub"
)

// A service publishes an order event to Kafka (here an in-process kfake
// cluster) and another consumes it as consumer group "billing".
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cluster.Close()
	seeds := cluster.ListenAddrs()

	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer admin.Close()
	if err := kafkapubsub.CreateTopic(ctx, admin, "shop.orders", kafkapubsub.TopicConfig{Partitions: 3}); err != nil {
		fmt.Println(err)
		return
	}

	t, err := kafkapubsub.OpenTopic(seeds, "shop.orders", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	topic := pubsub.NewTopic(t, nil)
	defer topic.Close()
	err = topic.Publish(ctx, &pubsub.Message{ID: "o-42-placed", Source: "/shop/orders", Type: "shop.order.placed",
		Subject: "order/42", DataContentType: "application/json", Data: []byte(`{"total":1200}`)})
	if err != nil {
		fmt.Println(err)
		return
	}

	sub, err := kafkapubsub.OpenSubscription(seeds, "billing", "shop.orders", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()
	r := pubsub.NewRouter(sub, &pubsub.RouterOptions{Consumer: "billing", Topic: "shop.orders"})
	r.Handle("shop.order.placed", func(ctx context.Context, m *pubsub.Message) error {
		fmt.Println("billing", m.Subject, m.Key, string(m.Data))
		cancel()
		return nil
	})
	if err := r.Run(ctx); !errors.Is(err, context.Canceled) {
		fmt.Println(err)
	}
	// Output:
	// billing order/42 order/42 {"total":1200}
}
