package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/rabbitpubsub"
)

// rabbitBroker is a RabbitMQ broker for `fjord pubsub`: a topic is an
// exchange, and the durable subscription of consumer on it is the quorum
// queue rabbitQueue(consumer, topic).
type rabbitBroker struct {
	conn  *rabbitpubsub.Conn
	where string
}

// rabbitQueue names the queue of consumer's subscription to the exchange
// topic, as rabbitpubsub's examples do: "billing.orders",
// "fjord-parked.orders.parked".
func rabbitQueue(consumer, topic string) string { return consumer + "." + topic }

func openRabbitBroker(ctx context.Context, _ *app, u *url.URL) (broker, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := rabbitpubsub.Dial(ctx, u.String(), &rabbitpubsub.DialOptions{ConnectionName: "fjord pubsub"})
	if err != nil {
		return nil, fmt.Errorf("broker unreachable: connecting to RabbitMQ at %s: %w", u.Redacted(), err)
	}
	return &rabbitBroker{conn: conn, where: "RabbitMQ at " + u.Redacted()}, nil
}

// exchange checks that the exchange topic exists.
func (b *rabbitBroker) exchange(ctx context.Context, topic string) (*rabbitpubsub.Topic, error) {
	t, err := b.conn.OpenTopic(ctx, topic, &rabbitpubsub.TopicOptions{Passive: true})
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return nil, fmt.Errorf("%w %q: %s has no exchange %q", errUnknownTopic, topic, b.where, topic)
	}
	return t, err
}

func (b *rabbitBroker) Topic(ctx context.Context, name string) (driver.Topic, error) {
	t, err := b.exchange(ctx, name)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (b *rabbitBroker) Subscription(ctx context.Context, topic, consumer string, o subscriptionOptions) (driver.Subscription, error) {
	t, err := b.exchange(ctx, topic)
	if err != nil {
		return nil, err
	}
	t.Close()
	return b.subscribe(ctx, topic, rabbitQueue(consumer, topic), &rabbitpubsub.SubscriptionOptions{Prefetch: o.maxHeld})
}

// Tail consumes a classic queue of its own bound to the exchange, which
// the broker deletes a minute after the command ends. A new queue holds
// nothing published before it, so fromStart is refused.
func (b *rabbitBroker) Tail(ctx context.Context, topic string, fromStart bool) (driver.Subscription, error) {
	if fromStart {
		return nil, errors.New("--from start: a RabbitMQ exchange keeps no messages for a new queue; only --from end works")
	}
	t, err := b.exchange(ctx, topic)
	if err != nil {
		return nil, err
	}
	t.Close()
	return b.subscribe(ctx, topic, rabbitQueue("fjord-tail-"+randomSuffix(), topic), &rabbitpubsub.SubscriptionOptions{
		Arguments: map[string]any{"x-queue-type": "classic", "x-expires": int64(time.Minute / time.Millisecond)}})
}

func (b *rabbitBroker) subscribe(ctx context.Context, exchange, queue string, opts *rabbitpubsub.SubscriptionOptions) (driver.Subscription, error) {
	s, err := b.conn.OpenSubscription(ctx, exchange, queue, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (b *rabbitBroker) Close() error { return b.conn.Close() }
