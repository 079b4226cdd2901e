// Package rabbitpubsub is the RabbitMQ driver for package pubsub, over
// AMQP 0-9-1 (github.com/rabbitmq/amqp091-go).
//
// A Conn is one AMQP connection; a Topic publishes to an exchange on its
// own channel, and a Subscription consumes a durable quorum queue bound to
// that exchange on its own channel.
//
//	conn, err := rabbitpubsub.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", nil)
//	if err != nil {
//		return err
//	}
//	defer conn.Close()
//	topic, err := conn.OpenTopic(ctx, "shop.orders", nil) // a durable topic exchange
//	if err != nil {
//		return err
//	}
//	defer topic.Close()
//	sub, err := conn.OpenSubscription(ctx, "shop.orders", "billing.orders", &rabbitpubsub.SubscriptionOptions{
//		BindingKeys:   []string{"shop.order.#"}, // routing keys are CloudEvents types
//		DeliveryLimit: 50, DeadLetterExchange: "shop.dead",
//	})
//
// # Wire format
//
// Messages follow the CloudEvents AMQP protocol binding in binary content
// mode: each attribute except datacontenttype is an AMQP header
// (application property) "cloudEvents_<name>", datacontenttype is the
// content-type property, the data is the body. The binding allows the
// prefixes "cloudEvents_" and "cloudEvents:" and prefers "_", which JMS
// clients can read; Fjord writes "_" and reads both, and turns native AMQP
// values (timestamps, integers, booleans) into the attributes' canonical
// strings. The id is also the message-id property; the driver Message's
// Key travels as the "partitionkey" extension. Messages are persistent
// (delivery mode 2).
//
// # Publishing
//
// A Topic's channel is in confirm mode. Send publishes the whole batch with
// the mandatory flag and then waits for every confirm: one round trip and
// one quorum-queue commit per batch rather than per message. A message no
// queue is bound for comes back as an *UnroutableError (not retryable); a
// negative confirm is ErrNacked (retryable).
//
// # Consuming
//
// OpenSubscription declares the queue with x-queue-type=quorum, and by
// default x-single-active-consumer, so that replicas of a service take
// over from each other rather than split one queue (set
// CompetingConsumers to share it). A quorum queue counts deliveries in the
// x-delivery-count header, which gives Deliveries; DeliveryLimit and
// DeadLetterExchange make the broker drop or dead-letter a message
// returned that many times, below Fjord's own parking, which happens in
// process after the Router's retries. Ack settles one delivery tag each;
// AMQP 0-9-1 does not confirm it, so an ack lost with its connection means
// one more delivery. Nack closes the subscription's channel, which gives
// back every message received on it and not acknowledged (see below).
//
// # Connection loss
//
// Drivers do not retry. The driver reopens what it needs on the next call
// instead: a Topic or Subscription whose channel has closed opens a new
// one, and a Conn whose connection has closed dials once more. A call that
// fails returns a *ConnectionError, which IsRetryable reports as
// retryable; package pubsub decides when to call again. The broker puts
// back every message that was not acknowledged on a closed channel; acks
// of such messages return ErrStaleAck.
//
// Every call is bounded by its context, also when the broker stops
// answering: waiting for confirms and deliveries watches ctx, and a
// synchronous AMQP method (opening a channel, declaring, consuming) that
// is still unanswered when ctx ends closes the connection's socket, since
// AMQP cannot abandon one method; the Conn's other channels then fail
// with retryable errors and the next call dials again.
//
// Features (see Features): Redelivery, Deliveries, and OrderedKeys unless
// CompetingConsumers: one consumer receives a quorum queue in order. A
// message given back by a closed channel (Nack, Close, a lost connection)
// goes back where it was, ahead of later ones; one requeued with
// basic.nack would go behind those delivered since, which is why Nack
// closes the channel. Package pubsub only nacks messages it will not
// handle. RabbitMQ does not deduplicate.
package rabbitpubsub
