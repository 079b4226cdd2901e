package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/natspubsub"
)

// natsBroker is a NATS JetStream server for `fjord pubsub`: the embedded
// one in the data directory, or one reached by URL.
type natsBroker struct {
	part  *natsPart // the embedded server or the external connection
	nc    *nats.Conn
	js    jetstream.JetStream
	where string // names the server in errors
}

// openEmbeddedNATSBroker starts the embedded server on <data>/nats, as
// serve does, unless serve (or another command) has it open.
func openEmbeddedNATSBroker(ctx context.Context, a *app) (broker, error) {
	part, err := startNATS(ctx, natsFlags{}, a.dataDir, false, slog.New(slog.DiscardHandler))
	if errors.Is(err, errNATSStoreInUse) {
		return nil, fmt.Errorf("%w: while `fjord serve` runs, start it with --nats-listen 127.0.0.1:4222 and give this command --broker nats://127.0.0.1:4222", err)
	}
	if err != nil {
		return nil, err
	}
	nc, err := part.server.Connect(nats.Name("fjord pubsub"))
	if err != nil {
		return nil, errors.Join(err, part.Close())
	}
	return newNATSBroker(part, nc, "the embedded NATS server in "+filepath.Join(a.dataDir, "nats"))
}

// openNATSBroker connects to the NATS server at u and checks that it has
// JetStream.
func openNATSBroker(ctx context.Context, _ *app, u *url.URL) (broker, error) {
	part, err := connectNATS(ctx, u.String(), slog.New(slog.DiscardHandler))
	if errors.Is(err, nats.ErrNoServers) {
		return nil, fmt.Errorf("broker unreachable: connecting to NATS at %s: %w", u.Redacted(), nats.ErrNoServers)
	}
	if err != nil {
		return nil, err
	}
	return newNATSBroker(part, part.conn, "NATS at "+u.Redacted())
}

func newNATSBroker(part *natsPart, nc *nats.Conn, where string) (*natsBroker, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, errors.Join(err, part.Close())
	}
	return &natsBroker{part: part, nc: nc, js: js, where: where}, nil
}

// stream names the stream that captures subject, or says there is none.
func (b *natsBroker) stream(ctx context.Context, subject string) (string, error) {
	name, err := b.js.StreamNameBySubject(ctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return "", fmt.Errorf("%w %q: no JetStream stream on %s captures the subject %q", errUnknownTopic, subject, b.where, subject)
	case err != nil:
		return "", fmt.Errorf("finding the stream of %q on %s: %w", subject, b.where, err)
	}
	return name, nil
}

func (b *natsBroker) Topic(ctx context.Context, name string) (driver.Topic, error) {
	if _, err := b.stream(ctx, name); err != nil {
		return nil, err
	}
	t, err := natspubsub.OpenTopic(ctx, b.nc, name, nil)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (b *natsBroker) Subscription(ctx context.Context, topic, consumer string, o subscriptionOptions) (driver.Subscription, error) {
	stream, err := b.stream(ctx, topic)
	if err != nil {
		return nil, err
	}
	s, err := natspubsub.OpenSubscription(ctx, b.nc, topic, consumer, &natspubsub.SubscriptionOptions{
		StreamName: stream, AckWait: 5 * time.Minute, MaxAckPending: o.maxHeld})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Tail opens a durable consumer of its own, which Close deletes; the
// server deletes it too when the command dies and it stays idle.
func (b *natsBroker) Tail(ctx context.Context, topic string, fromStart bool) (driver.Subscription, error) {
	stream, err := b.stream(ctx, topic)
	if err != nil {
		return nil, err
	}
	name := "fjord-tail-" + randomSuffix()
	policy := jetstream.DeliverNewPolicy
	if fromStart {
		policy = jetstream.DeliverAllPolicy
	}
	sub, err := natspubsub.OpenSubscription(ctx, b.nc, topic, name, &natspubsub.SubscriptionOptions{
		StreamName: stream, DeliverPolicy: policy, PollWait: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	t := &natsTail{Subscription: sub, js: b.js, stream: stream, name: name}
	if err := t.expireWhenIdle(ctx); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

func (b *natsBroker) Close() error {
	if b.part.server != nil {
		b.nc.Close() // serve's part closes only an external connection
	}
	return b.part.Close()
}

// natsTail is a tail's subscription: Close deletes its consumer.
type natsTail struct {
	*natspubsub.Subscription
	js           jetstream.JetStream
	stream, name string
}

// expireWhenIdle has the server delete the consumer once nobody has
// pulled from it for a while, should Close never run.
func (t *natsTail) expireWhenIdle(ctx context.Context) error {
	c, err := t.js.Consumer(ctx, t.stream, t.name)
	if err != nil {
		return err
	}
	cfg := c.CachedInfo().Config
	cfg.InactiveThreshold = 10 * time.Minute
	_, err = t.js.UpdateConsumer(ctx, t.stream, cfg)
	return err
}

func (t *natsTail) Close() error {
	err := t.Subscription.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if derr := t.js.DeleteConsumer(ctx, t.stream, t.name); derr != nil && !errors.Is(derr, jetstream.ErrConsumerNotFound) {
		err = errors.Join(err, fmt.Errorf("deleting the tail's consumer %q: %w", t.name, derr))
	}
	return err
}
