package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// pubsubFlags are what every `fjord pubsub` command shares.
type pubsubFlags struct {
	broker string // --broker: "" is the embedded NATS server in <data>/nats
}

func newPubSubCmd(a *app) *cobra.Command {
	var f pubsubFlags
	cmd := &cobra.Command{
		Use:   "pubsub",
		Short: "Publish, follow and manage parked messages on a message broker",
		Long: `Work with messaging topics: publish a CloudEvent, follow a topic, and list,
inspect, requeue or discard the messages consumers parked (dead-lettered).

The broker is chosen by the scheme of --broker: ` + strings.Join(brokerSchemeNames(), ", ") + `.
Without --broker the commands open the embedded NATS JetStream store in
<data>/nats, as ` + "`fjord serve`" + ` does. While serve runs, reach its server instead: start
serve with --nats-listen 127.0.0.1:4222 and give --broker nats://127.0.0.1:4222.

What a topic is depends on the broker:

  nats://   a subject that a JetStream stream captures; a consumer is a
            durable consumer of that stream
  amqp://   an exchange, which must exist; a consumer's subscription is the
            quorum queue <consumer>.<topic>, bound to it
  kafka://  a Kafka topic (seed brokers: kafka://host:port,host:port); a
            consumer is a consumer group
  stomp://  a virtual topic name (ActiveMQ: /topic/VirtualTopic.<topic>, read
            through /queue/Consumer.<consumer>.VirtualTopic.<topic>), or a
            destination as it is when it begins with "/"

Consumers park to the topic's park destination, by convention
<topic>.parked (pubsub.ParkTopic). RabbitMQ and ActiveMQ keep messages only
for queues that exist: create the park reader's queue before anything is
parked (declare it when deploying, or run "fjord pubsub parked list" once).`,
		Args: argsBetween(0, 0, ""),
	}
	cmd.PersistentFlags().StringVar(&f.broker, "broker", brokerDefault(a.getenv),
		"broker URL ("+strings.Join(brokerSchemeNames(), ", ")+"); default: the embedded NATS store in <data>/nats (env FJORD_BROKER, else FJORD_NATS)")
	cmd.AddCommand(newPubSubPublishCmd(a, &f), newPubSubTailCmd(a, &f), newPubSubParkedCmd(a, &f))
	return cmd
}

// brokerDefault is $FJORD_BROKER, else the server serve uses ($FJORD_NATS
// unless it is "off").
func brokerDefault(getenv func(string) string) string {
	if b := getenv("FJORD_BROKER"); b != "" {
		return b
	}
	if n := getenv("FJORD_NATS"); n != "off" {
		return n
	}
	return ""
}

// broker is what `fjord pubsub` needs of a message broker; one
// implementation per scheme of --broker.
type broker interface {
	// Topic opens name for sending. An error wraps errUnknownTopic when the
	// broker has no such destination.
	Topic(ctx context.Context, name string) (driver.Topic, error)
	// Subscription opens the durable subscription consumer on topic.
	Subscription(ctx context.Context, topic, consumer string, o subscriptionOptions) (driver.Subscription, error)
	// Tail opens a subscription that receives what is published to topic
	// from now on (everything stored, with fromStart) and leaves nothing
	// behind when closed.
	Tail(ctx context.Context, topic string, fromStart bool) (driver.Subscription, error)
	// Close releases the broker.
	Close() error
}

// subscriptionOptions tune a durable subscription that holds messages
// while a command runs.
type subscriptionOptions struct {
	maxHeld int // how many messages may be held unacknowledged at once
}

// errUnknownTopic is matched by the errors of a topic the broker does not
// have.
var errUnknownTopic = errors.New("unknown topic")

// brokerScheme opens the brokers of one URL scheme.
type brokerScheme struct {
	scheme string
	open   func(ctx context.Context, a *app, u *url.URL) (broker, error)
}

// brokerSchemes is the table of the brokers `fjord pubsub` can use.
func brokerSchemes() []brokerScheme {
	return []brokerScheme{
		{"nats", openNATSBroker},
		{"amqp", openRabbitBroker},
		{"amqps", openRabbitBroker},
		{"stomp", openStompBroker},
		{"kafka", openKafkaBroker},
	}
}

func brokerSchemeNames() []string {
	var names []string
	for _, s := range brokerSchemes() {
		names = append(names, s.scheme+"://")
	}
	return names
}

// openBroker opens the broker --broker names, or the embedded NATS store
// in the data directory.
func (a *app) openBroker(ctx context.Context, f *pubsubFlags) (broker, error) {
	if f.broker == "" {
		return openEmbeddedNATSBroker(ctx, a)
	}
	u, err := url.Parse(f.broker)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("invalid --broker %q: want a URL such as nats://127.0.0.1:4222", f.broker)
	}
	for _, s := range brokerSchemes() {
		if s.scheme == u.Scheme {
			return s.open(ctx, a, u)
		}
	}
	return nil, fmt.Errorf("invalid --broker %q: unknown scheme %q; this fjord knows %s", redactURL(u), u.Scheme, strings.Join(brokerSchemeNames(), ", "))
}

// withBroker runs f on the broker and closes it.
func (a *app) withBroker(ctx context.Context, pf *pubsubFlags, f func(b broker) error) (err error) {
	b, err := a.openBroker(ctx, pf)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	return f(b)
}

// redactURL hides a password in u.
func redactURL(u *url.URL) string { return u.Redacted() }
