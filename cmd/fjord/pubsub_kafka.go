package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/kafkapubsub"
)

// kafkaBroker is a Kafka cluster for `fjord pubsub`: a topic is a Kafka
// topic, the durable subscription of consumer is the consumer group of
// that name.
type kafkaBroker struct {
	seeds []string
	admin *kadm.Client
	kc    *kgo.Client
	where string
}

// kafkaJoinTimeout bounds the wait for a consumer group to hand this
// member its partitions.
const kafkaJoinTimeout = 30 * time.Second

// openKafkaBroker connects to the seed brokers of u
// (kafka://host:port[,host:port…]).
func openKafkaBroker(ctx context.Context, _ *app, u *url.URL) (broker, error) {
	var seeds []string
	for s := range strings.SplitSeq(u.Host, ",") {
		if s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("invalid --broker %q: want kafka://host:port[,host:port…]", u.Redacted())
	}
	kc, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, fmt.Errorf("invalid --broker %q: %w", u.Redacted(), err)
	}
	b := &kafkaBroker{seeds: seeds, admin: kadm.NewClient(kc), kc: kc, where: "Kafka at " + u.Host}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := kc.Ping(ctx); err != nil {
		kc.Close()
		return nil, fmt.Errorf("broker unreachable: connecting to %s: %w", b.where, err)
	}
	return b, nil
}

// topic checks that the Kafka topic exists.
func (b *kafkaBroker) topic(ctx context.Context, name string) error {
	ds, err := b.admin.ListTopics(ctx, name)
	if err != nil {
		return fmt.Errorf("looking up topic %q on %s: %w", name, b.where, err)
	}
	if !ds.Has(name) {
		return fmt.Errorf("%w %q: %s has no such topic", errUnknownTopic, name, b.where)
	}
	return ds.Error()
}

func (b *kafkaBroker) Topic(ctx context.Context, name string) (driver.Topic, error) {
	if err := b.topic(ctx, name); err != nil {
		return nil, err
	}
	t, err := kafkapubsub.OpenTopic(b.seeds, name, nil)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (b *kafkaBroker) Subscription(ctx context.Context, topic, consumer string, _ subscriptionOptions) (driver.Subscription, error) {
	if err := b.topic(ctx, topic); err != nil {
		return nil, err
	}
	return openKafkaGroup(ctx, b.seeds, consumer, topic, nil)
}

// Tail joins a consumer group of its own whose offsets are first set to
// the ends of the topic's partitions (unless fromStart), so that every
// message published once Tail has returned is printed; Close deletes the
// group.
func (b *kafkaBroker) Tail(ctx context.Context, topic string, fromStart bool) (driver.Subscription, error) {
	if err := b.topic(ctx, topic); err != nil {
		return nil, err
	}
	group := "fjord-tail-" + randomSuffix()
	if !fromStart {
		ends, err := b.admin.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			err = b.admin.CommitAllOffsets(ctx, group, ends.Offsets())
		}
		if err != nil {
			return nil, fmt.Errorf("starting %q at the end of %q: %w", group, topic, err)
		}
	}
	deleteGroup := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := b.admin.DeleteGroup(ctx, group)
		return err
	}
	sub, err := openKafkaGroup(ctx, b.seeds, group, topic, deleteGroup)
	if err != nil {
		return nil, errors.Join(err, deleteGroup())
	}
	return sub, nil
}

func (b *kafkaBroker) Close() error {
	b.kc.Close()
	return nil
}

// kafkaGroup is a member of a consumer group whose first Receive waits for
// the group to hand it its partitions before its context's deadline
// counts: a caller's short deadline (Parked's idle wait) would otherwise
// end before the member had anything to receive from.
type kafkaGroup struct {
	*kafkapubsub.Subscription
	parent   context.Context // the command's: ends the wait for the join
	assigned chan struct{}   // closed when partitions are assigned
	once     sync.Once
	onClose  func() error // nil, or run after Close
}

func openKafkaGroup(ctx context.Context, seeds []string, group, topic string, onClose func() error) (*kafkaGroup, error) {
	g := &kafkaGroup{parent: ctx, assigned: make(chan struct{}), onClose: onClose}
	sub, err := kafkapubsub.OpenSubscription(seeds, group, topic, &kafkapubsub.SubscriptionOptions{
		ClientOptions: []kgo.Opt{kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			g.once.Do(func() { close(g.assigned) })
		})},
	})
	if err != nil {
		return nil, err
	}
	g.Subscription = sub
	return g, nil
}

// Receive receives as the subscription does; until partitions are
// assigned, it receives for up to kafkaJoinTimeout, and after the
// assignment for what was left of ctx's deadline when it was called.
func (g *kafkaGroup) Receive(ctx context.Context, max int) ([]*driver.Message, error) {
	select {
	case <-g.assigned:
		return g.Subscription.Receive(ctx, max)
	default:
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return g.Subscription.Receive(ctx, max)
	}
	wait := time.Until(deadline)
	rctx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), kafkaJoinTimeout,
		fmt.Errorf("the consumer group was not joined within %v: %w", kafkaJoinTimeout, context.DeadlineExceeded))
	stop := context.AfterFunc(g.parent, cancel)
	defer stop()
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() {
		select {
		case <-g.assigned:
			t := time.AfterFunc(wait, cancel)
			<-rctx.Done()
			t.Stop()
		case <-rctx.Done():
		}
	})
	msgs, err := g.Subscription.Receive(rctx, max)
	switch {
	case err == nil:
		return msgs, nil
	case g.parent.Err() != nil:
		return nil, g.parent.Err()
	case rctx.Err() != nil:
		return nil, context.DeadlineExceeded // the idle wait ran out
	}
	return nil, err
}

func (g *kafkaGroup) Close() error {
	err := g.Subscription.Close()
	if g.onClose != nil {
		err = errors.Join(err, g.onClose())
	}
	return err
}
