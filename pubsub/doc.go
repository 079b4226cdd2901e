// Package pubsub publishes and consumes business events as CloudEvents over
// message brokers (NATS JetStream, RabbitMQ, Kafka, STOMP/ActiveMQ, or in
// process), through the small seam in pubsub/driver.
//
// A Topic validates messages, coalesces concurrent Publish calls into
// batched driver Sends and retries what the broker reports as transient;
// an error that matches ErrUnavailable means "try again later", never a
// silent loss. A Router consumes one durable subscription: messages of one
// order key are handled in order, different keys concurrently; failures
// are retried with full-jitter exponential backoff and then parked on a
// dead-letter topic with the reason, as are poison messages (Permanent),
// messages that are not valid CloudEvents, and by default messages without
// a handler. Parked lists, inspects and requeues parked messages.
// Delivery is at least once: consumers deduplicate on (Source, ID).
//
//	b := mempubsub.New(nil) // or natspubsub, rabbitpubsub, kafkapubsub…
//	b.CreateSubscription("orders", "billing")
//	b.CreateSubscription(pubsub.ParkTopic("orders"), pubsub.ParkReader) // "orders.parked"
//
//	topic := pubsub.NewTopic(b.Topic("orders"), nil)
//	defer topic.Close()
//	err := topic.Publish(ctx, &pubsub.Message{
//		ID: "o-42-placed", Source: "/shop/orders", Type: "shop.order.placed",
//		Subject: "order/42", Data: []byte(`{"total":1200}`),
//	})
//
//	r := pubsub.NewRouter(b.Subscription("orders", "billing"), &pubsub.RouterOptions{
//		Consumer: "billing", Topic: "orders", Park: b.Topic(pubsub.ParkTopic("orders")),
//	})
//	r.Handle("shop.order.placed", func(ctx context.Context, m *pubsub.Message) error {
//		var o Order
//		if err := json.Unmarshal(m.Data, &o); err != nil {
//			return pubsub.Permanent(err) // parked at once
//		}
//		return bill(ctx, o) // an error is retried, then parked
//	})
//	err = r.Run(ctx) // until ctx ends
//
// # Order per broker
//
// A Router keeps a key's order as the driver delivers it (Features
// OrderedKeys), handling a key's messages one at a time and retrying in
// process. What a broker does when a consumer process dies differs:
//   - Kafka (kafkapubsub): offsets are committed up to the lowest
//     unacknowledged message, so the next owner of a partition resumes
//     there, in order.
//   - NATS JetStream (natspubsub): a dead process's unacknowledged
//     messages come back after AckWait, behind later ones, unless the
//     Subscription is opened with ResumeFromAckFloor, which rewinds the
//     durable consumer to its acknowledgement floor (one active
//     Subscription per consumer; acknowledged messages above the floor
//     come again as duplicates).
//   - RabbitMQ (rabbitpubsub): a quorum queue puts what a lost
//     connection held back where it was, ahead of later messages, with
//     one consumer per queue (not CompetingConsumers).
//   - STOMP (stomppubsub): the broker redelivers what a lost connection
//     had not acknowledged; see that package for competing consumers
//     (MessageGroups).
//
// Either way delivery is at least once: a consumer that must apply each
// message once, in order, deduplicates (package inbox) and runs one
// active instance per subscription.
//
// Tracing is injected without importing OpenTelemetry: TopicOptions.Inject
// and RouterOptions.Extract carry "traceparent" and "tracestate" as
// CloudEvents extensions, and package telemetry fills them in.
package pubsub
