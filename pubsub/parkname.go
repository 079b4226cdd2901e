package pubsub

// ParkTopic returns the conventional park (dead-letter) destination of
// messages consumed from topic: topic + ".parked", such as "orders.parked"
// for "orders". Every consumer of topic parks there (the
// ExtParkConsumer extension says which one did), and `fjord pubsub parked`
// looks there unless told otherwise:
//
//	r := pubsub.NewRouter(sub, &pubsub.RouterOptions{
//		Consumer: "billing", Topic: "orders", Park: b.Topic(pubsub.ParkTopic("orders")),
//	})
//
// The name is a convention, not a requirement: RouterOptions.Park may be
// any destination. With NATS JetStream the park subject may be captured by
// the topic's stream ("orders.>") or by a stream of its own: a parked copy
// has a deduplication key of its own (driver.DedupKey).
func ParkTopic(topic string) string { return topic + ParkSuffix }

// ParkSuffix is what ParkTopic appends to a topic's name.
const ParkSuffix = ".parked"

// ParkReader is the conventional name of the durable subscription on a
// park destination through which operators (and `fjord pubsub parked`)
// list, requeue and discard parked messages with Parked.
const ParkReader = "fjord-parked"
