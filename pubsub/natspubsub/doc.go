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
//	topic, err := natspubsub.OpenTopic(ctx, nc, "shop.orders", &natspubsub.TopicOptions{
//		Stream: &jetstream.StreamConfig{Name: "SHOP", Storage: jetstream.FileStorage, Replicas: 3,
//			Duplicates: 10 * time.Minute, MaxAge: 7 * 24 * time.Hour},
//	})
//	if err != nil {
//		return err
//	}
//	defer topic.Close()
//	sub, err := natspubsub.OpenSubscription(ctx, nc, "shop.orders", "billing", &natspubsub.SubscriptionOptions{
//		AckWait: time.Minute, MaxAckPending: 500,
//	})
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
// unless the server loses its consumer state. Close gives unacknowledged
// messages back at once.
//
// Features: Dedup, Redelivery, Deliveries and OrderedKeys. JetStream
// delivers a consumer's messages in stream order and package pubsub
// handles a key's messages in turn, so one key's messages are received in
// the order sent; a message redelivered (Nack, AckWait) arrives after
// later ones, which package pubsub's in-process retry avoids for handler
// failures.
package natspubsub
