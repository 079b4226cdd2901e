package kafkapubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// TopicOptions configures OpenTopic. The zero value works.
type TopicOptions struct {
	// ClientOptions are added to the options of the client OpenTopic
	// creates: TLS, SASL, compression, linger, batch sizes. Options that
	// weaken delivery (kgo.RequiredAcks other than all, kgo.DisableIdempotentWrite)
	// break Send's contract.
	ClientOptions []kgo.Opt
}

// Topic sends messages to one Kafka topic. It implements driver.Topic and
// is safe for concurrent use.
//
// Every message is one record: its Key is the record key, so the default
// partitioner puts one key's messages on one partition, in order. The
// producer waits for acks from all in-sync replicas and is idempotent, so a
// retry inside the client neither duplicates nor reorders records.
type Topic struct {
	client *kgo.Client
	owned  bool
	topic  string
	mu     struct {
		sync.RWMutex
		closed bool
	}
}

// maxBatchBytes bounds a record batch before compression: Kafka's default
// max.message.bytes (1 MiB + 12), a little above kgo's default, so that a
// 1 MB message fits.
const maxBatchBytes = 1<<20 + 12

// OpenTopic returns a Topic that sends to topic through a new client of the
// brokers at seeds ("host:port"): acks=all, idempotent, no linger (package
// pubsub batches; Send's records go out at once). Close closes the client. The client
// connects lazily: a broker that is down makes Send fail, not OpenTopic.
func OpenTopic(seeds []string, topic string, opts *TopicOptions) (*Topic, error) {
	if opts == nil {
		opts = &TopicOptions{}
	}
	if topic == "" {
		return nil, errors.New("kafkapubsub: OpenTopic: empty topic name")
	}
	kopts := append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(maxBatchBytes),
		kgo.ProducerLinger(0),
	}, opts.ClientOptions...)
	client, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafkapubsub: OpenTopic %q: %w", topic, err)
	}
	return &Topic{client: client, owned: true, topic: topic}, nil
}

// NewTopic returns a Topic that sends to topic through client, which the
// caller keeps and closes after the Topic. client must produce with
// acks=all (kgo's default) for Send to mean what driver.Topic says, and
// should not linger (kgo.ProducerLinger(0)): package pubsub batches, and a
// lingering client adds its linger to every Send.
func NewTopic(client *kgo.Client, topic string) *Topic {
	return &Topic{client: client, topic: topic}
}

// Send produces msgs and waits until the brokers have acknowledged every
// one of them (acks=all), or ctx ends. Messages of one key keep their
// order. On error any subset may have been written; IsRetryable says
// whether sending them again may succeed. When ctx ends first, Send returns
// an error matching ctx.Err(); the records still buffered in the client may
// be written later.
func (t *Topic) Send(ctx context.Context, msgs []*driver.Message) error {
	done := make(chan error, len(msgs))
	promise := func(_ *kgo.Record, err error) { done <- err }
	t.mu.RLock()
	if t.mu.closed {
		t.mu.RUnlock()
		return fmt.Errorf("kafkapubsub: send to topic %q: %w", t.topic, ErrClosed)
	}
	for _, m := range msgs {
		t.client.Produce(ctx, toRecord(t.topic, m), promise)
	}
	t.mu.RUnlock()
	var first error
	for n := range len(msgs) {
		select {
		case err := <-done:
			if err != nil && first == nil {
				first = err
			}
		case <-ctx.Done():
			return fmt.Errorf("kafkapubsub: send to topic %q: %d of %d messages not acknowledged by the brokers when the context ended: %w",
				t.topic, len(msgs)-n, len(msgs), ctx.Err())
		}
	}
	if first != nil {
		return fmt.Errorf("kafkapubsub: send to topic %q: %w", t.topic, first)
	}
	return nil
}

// IsRetryable reports whether an error from Send may go away when the same
// messages are sent again: a broker that is down, moving or busy, or a
// timeout (including ctx's deadline). A closed Topic, a canceled context
// and a record the broker refuses (too large, not authorized) are not.
func (t *Topic) IsRetryable(err error) bool { return isRetryable(err) }

// Ping checks that a broker answers.
func (t *Topic) Ping(ctx context.Context) error {
	if err := t.client.Ping(ctx); err != nil {
		return fmt.Errorf("kafkapubsub: ping: %w", err)
	}
	return nil
}

// Close stops the Topic: later Sends fail with ErrClosed. When OpenTopic
// created the client, Close closes it, and Sends in progress fail with
// kgo.ErrClientClosed for the records not yet acknowledged.
func (t *Topic) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return nil
	}
	t.mu.closed = true
	if t.owned {
		t.client.Close()
	}
	return nil
}

// Compile-time guards.
var (
	_ driver.Topic  = (*Topic)(nil)
	_ driver.Pinger = (*Topic)(nil)
)
