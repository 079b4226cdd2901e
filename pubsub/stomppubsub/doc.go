// Package stomppubsub is the STOMP 1.2 driver for package pubsub, for
// Apache ActiveMQ (Classic 5.17 and Artemis) over
// github.com/go-stomp/stomp/v3.
//
// A Topic sends to one destination and a Subscription consumes one queue,
// each over its own connection. For fan-out on ActiveMQ Classic, send to a
// virtual topic and give each consuming service its own queue of it:
//
//	topic, err := stomppubsub.OpenTopic(ctx, "127.0.0.1:61613", stomppubsub.VirtualTopic("orders"), nil)
//	if err != nil {
//		return err
//	}
//	defer topic.Close()
//	// "/queue/Consumer.billing.VirtualTopic.orders": every message sent to the topic
//	sub, err := stomppubsub.OpenSubscription(ctx, "127.0.0.1:61613",
//		stomppubsub.VirtualTopicQueue("billing", "orders"), nil)
//
// The broker creates a consumer queue on its first subscription and keeps
// messages for it from then on; subscribe once before the first send (as
// a deployment step). On Artemis use an address with one multicast queue
// per service, or its virtual-topic compatibility.
//
// # Wire format
//
// CloudEvents defines no STOMP binding. ActiveMQ turns STOMP headers into
// JMS message properties, so Fjord uses the names the AMQP binding gives
// JMS-compatible brokers: each attribute except datacontenttype is a
// header "cloudEvents_<name>" (the HTTP binding's "ce-" names contain '-',
// which a JMS property name cannot), datacontenttype is STOMP's
// content-type header, and the Key is "cloudEvents_partitionkey". JMS and
// AMQP 1.0 consumers of the same queue thus see the binding's names. STOMP
// 1.2 escapes ':', '\n', '\r' and '\' in header values; bodies carry a
// content-length and are binary-safe. Messages are sent with
// persistent:true.
//
// # Sending
//
// Send sends a batch inside one STOMP transaction and waits for the
// receipt of its COMMIT: the broker has stored all of the batch, in order,
// or none of it. (go-stomp waits for each SEND's receipt while holding its
// connection, so per-message receipts cannot be pipelined; one
// transaction is one round trip per batch.)
//
// # Consuming
//
// Subscriptions use ack mode client-individual and ask ActiveMQ Classic
// for an exclusive consumer unless CompetingConsumers. Ack sends the
// batch's ACK frames in one transaction and waits for the COMMIT receipt,
// so an acknowledged message does not come back. Deliveries is 1, or
// 2 when the broker flags a message redelivered: over STOMP ActiveMQ sends
// no delivery count. PublishTime is the broker's timestamp header. With a
// large backlog ActiveMQ Classic pages in 200 messages of a queue at a
// time, so a consumer holds at most about that many unacknowledged
// messages whatever its Prefetch.
//
// ActiveMQ Classic answers a STOMP NACK by moving the message to its
// dead-letter queue, ActiveMQ.DLQ, at once. Nack therefore ends the
// subscription instead, which gives every unacknowledged message of it
// back for redelivery (see Subscription). Fjord parks failed messages
// itself, after the Router's retries; the broker's DLQ is the broker's own
// last resort: Classic sends there what a redelivery policy
// (RedeliveryPlugin, maximumRedeliveries) gives up on and expired
// messages, Artemis what exceeds max-delivery-attempts (10 by default).
// Read those queues with any STOMP or JMS
// client; they are not Fjord's park.
//
// # Connection loss
//
// Drivers do not retry. A call that finds its connection gone dials once
// more; if that fails it returns a *ConnectionError (retryable). The
// broker redelivers what a lost connection had not acknowledged; acks of
// such messages return ErrStaleAck. go-stomp's calls take no context:
// when ctx ends, the driver closes the connection so that the call
// returns.
//
// Features (see Features): Redelivery, and OrderedKeys unless
// CompetingConsumers. Not Deliveries (only a flag), not Dedup. Replicas
// that compete for one queue keep per-key order when the Topic sends
// with MessageGroups (the Key as JMSXGroupID: the broker gives each key
// to one consumer at a time).
package stomppubsub
