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
// again after Nack or Close comes ahead of messages not yet delivered;
// package pubsub retries failed handlers in process, and nacks only what
// it will not handle, so that does not reorder a key in normal operation.
//
// # Order across crashes
//
// A process that dies (or loses its connection for good) leaves its
// messages unacknowledged; by default JetStream hands them out again only
// after AckWait, while the next process already receives later ones: a
// key's messages are then handled out of order. With
// SubscriptionOptions.ResumeFromAckFloor, OpenSubscription finds such
// messages (the consumer's NumAckPending) and rewinds the consumer to its
// acknowledgement floor first, like a Kafka consumer resuming from its
// committed offset: everything after the last message below which all
// were acknowledged comes again, in stream order — the messages the dead
// process held and the ones it acknowledged above the floor, as
// duplicates (deduplicate them, with package inbox for instance), with
// delivery counts starting again at 1.
//
//	ds, err := natspubsub.OpenSubscription(ctx, nc, "shop.orders", "billing",
//		&natspubsub.SubscriptionOptions{ResumeFromAckFloor: true})
//
// The rewind is the server's consumer reset (nats-server 2.14 and later)
// or, on older servers, a delete and create of the durable consumer with
// the same settings starting after the floor. Use it with one active
// Subscription on the consumer, which ordered consumption means anyway
// (one consumer at a time: a process supervisor restarting it, or a
// leader elected outside NATS): opening one rewinds the consumer under any
// other that is still open, whose messages then come again, out of order,
// and on older servers fail its acknowledgements while the consumer is
// recreated. It is off by default because the default serves competing
// Subscriptions, where per-key order is not kept anyway and a rewind would
// disturb the others.
package natspubsub
