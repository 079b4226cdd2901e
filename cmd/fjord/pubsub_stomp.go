package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/stomppubsub"
)

// stompBroker is a STOMP broker (ActiveMQ) for `fjord pubsub`. A topic is
// a virtual topic name ("orders": /topic/VirtualTopic.orders, consumed
// through /queue/Consumer.<consumer>.VirtualTopic.orders), or a STOMP
// destination as it is when it begins with "/".
type stompBroker struct {
	addr  string
	dial  stomppubsub.DialOptions
	where string
}

func openStompBroker(_ context.Context, _ *app, u *url.URL) (broker, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("invalid --broker %q: want stomp://[user:password@]host:port", u.Redacted())
	}
	b := &stompBroker{addr: u.Host, where: "the STOMP broker at " + u.Host}
	if u.User != nil {
		b.dial.Login = u.User.Username()
		b.dial.Passcode, _ = u.User.Password()
	}
	return b, nil
}

// reached names the broker in a failure to reach it.
func (b *stompBroker) reached(err error) error {
	var ce *stomppubsub.ConnectionError
	if errors.As(err, &ce) {
		return fmt.Errorf("broker unreachable: %s: %w", b.where, err)
	}
	return err
}

// stompDestination is where messages for topic are sent.
func stompDestination(topic string) string {
	if strings.HasPrefix(topic, "/") {
		return topic
	}
	return stomppubsub.VirtualTopic(topic)
}

func (b *stompBroker) Topic(ctx context.Context, name string) (driver.Topic, error) {
	t, err := stomppubsub.OpenTopic(ctx, b.addr, stompDestination(name), &stomppubsub.TopicOptions{Dial: b.dial})
	if err != nil {
		return nil, b.reached(err)
	}
	return t, nil
}

// Subscription consumes consumer's queue of the virtual topic, or the
// queue topic names.
func (b *stompBroker) Subscription(ctx context.Context, topic, consumer string, o subscriptionOptions) (driver.Subscription, error) {
	dest := topic
	switch {
	case !strings.HasPrefix(topic, "/"):
		dest = stomppubsub.VirtualTopicQueue(consumer, topic)
	case !strings.HasPrefix(topic, "/queue/"):
		return nil, fmt.Errorf("%q: a durable subscription reads a queue: give a virtual topic name or a /queue/ destination", topic)
	}
	return b.subscribe(ctx, dest, &stomppubsub.SubscriptionOptions{Dial: b.dial, Prefetch: o.maxHeld})
}

// Tail subscribes to the topic itself, which keeps nothing for it after
// the command ends, and holds nothing published before.
func (b *stompBroker) Tail(ctx context.Context, topic string, fromStart bool) (driver.Subscription, error) {
	dest := stompDestination(topic)
	switch {
	case fromStart:
		return nil, errors.New("--from start: a STOMP topic keeps no messages for a new subscriber; only --from end works")
	case !strings.HasPrefix(dest, "/topic/"):
		return nil, fmt.Errorf("%q is not a topic: following a queue would take its messages from its consumers", topic)
	}
	return b.subscribe(ctx, dest, &stomppubsub.SubscriptionOptions{Dial: b.dial, CompetingConsumers: true})
}

func (b *stompBroker) subscribe(ctx context.Context, dest string, opts *stomppubsub.SubscriptionOptions) (driver.Subscription, error) {
	s, err := stomppubsub.OpenSubscription(ctx, b.addr, dest, opts)
	if err != nil {
		return nil, b.reached(err)
	}
	return s, nil
}

func (b *stompBroker) Close() error { return nil }
