// Package natspubsub is the NATS JetStream driver for package pubsub.
//
// A Topic publishes to one subject of a stream; a Subscription reads a
// durable pull consumer with explicit acknowledgement. Both take a
// *nats.Conn that the caller owns (natsembed starts a server in process
// and connects to it).
//
//	nc, err := nats.Connect("nats://127.0.0.1:4222")
//	if err != nil {
//		return err
//	}
//	defer nc.Close()
//	dt, err := natspubsub.OpenTopic(ctx, nc, "shop.orders", &natspubsub.TopicOptions{
//		Stream: &jetstream.StreamConfig{Name: "SHOP", Storage: jetstream.FileStorage, Replicas: 3,
//			Duplicates: 10 * time.Minute, MaxAge: 7 * 24 * time.Hour},
//	})
//	if err != nil {
//		return err
//	}
//	topic := pubsub.NewTopic(dt, nil) // closes dt
//	defer topic.Close()
//
//	ds, err := natspubsub.OpenSubscription(ctx, nc, "shop.orders", "billing", &natspubsub.SubscriptionOptions{
//		AckWait: time.Minute, MaxAckPending: 500,
//	})
//	if err != nil {
//		return err
//	}
//	defer ds.Close()
//	r := pubsub.NewRouter(ds, &pubsub.RouterOptions{Consumer: "billing", Topic: "shop.orders"})
//	r.Handle("shop.order.placed", bill)
//	return r.Run(ctx)
//
// Without TopicOptions.Stream, OpenTopic binds to the stream that already
// captures the subject; SubscriptionOptions.StreamName names one.
//
// # Wire format
//
// Messages follow the CloudEvents NATS protocol binding in binary content
// mode: each attribute travels as a header "ce-<name>" (datacontenttype
// as "ce-datacontenttype"; a received "Content-Type" stands in when it is
// missing), values percent-encoded as the binding says, the data as the
// payload. The driver Message's Key travels as the "ce-partitionkey"
// extension. Nats-Msg-Id is a hash of source and id, so JetStream stores a
// message sent twice within the stream's duplicate window once.
//
// # Delivery
//
// Send publishes a batch asynchronously and waits for every
// acknowledgement. Ack and Nack are confirmed by the server (double
// acknowledgement, pipelined over the batch): when Ack returns nil the
// server has recorded it, so an acknowledged message does not come back
// unless the server loses its consumer state. While a Subscription is
// open it reports the messages it holds as in progress, so JetStream does
// not hand a slow or retrying handler's message out again; Close gives
// unacknowledged messages back at once, and AckWait matters only when the
// process dies or loses its connection.
//
// Features: Dedup, Redelivery, Deliveries and OrderedKeys. JetStream
// delivers a consumer's messages in stream order, Send stores a batch in
// order, and package pubsub handles a key's messages in turn, so one
// key's messages are received in the order sent. A message delivered
// again (after Nack, Close, or a lost connection) arrives after later
// ones; package pubsub retries failed handlers in process instead, so
// that does not happen in normal operation.
package natspubsub
