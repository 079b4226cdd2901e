package pubsub_test

import (
	"fmt"

	"github.com/fjord-data/fjord/pubsub"
)

func ExampleParkTopic() {
	fmt.Println(pubsub.ParkTopic("orders"), pubsub.ParkTopic("shop.orders"))
	// Output: orders.parked shop.orders.parked
}
