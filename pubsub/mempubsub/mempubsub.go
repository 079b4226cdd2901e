// Package mempubsub is an in-process message broker that implements
// pubsub/driver with every feature: durable named subscriptions that keep
// messages while nothing is attached, acknowledgement with redelivery
// after Nack and after Close, delivery counts, per-key order and
// deduplication on (source, id) within a window. Tests and examples use it;
// it keeps everything in memory and forgets it when the process ends.
//
//	b := mempubsub.New(nil)
//	b.CreateSubscription("orders", "billing") // keeps messages from now on
//	topic := pubsub.NewTopic(b.Topic("orders"), nil)
//	sub := b.Subscription("orders", "billing")
package mempubsub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// ErrClosed is returned by a Topic or Subscription used after Close.
var ErrClosed = errors.New("mempubsub: closed")

// ErrForeignAckID is returned by Ack and Nack for an ID that this
// subscription did not hand out.
var ErrForeignAckID = errors.New("mempubsub: ack ID from another subscription")

// Features are what mempubsub supports: everything.
var Features = driver.Features{OrderedKeys: true, Dedup: true, Redelivery: true, Deliveries: true}

// Options tune a Broker. The zero value works.
type Options struct {
	// DedupWindow is how long a topic remembers a (source, id) pair and
	// drops messages that repeat it (default 2 minutes; negative turns
	// deduplication off).
	DedupWindow time.Duration
}

// Broker holds topics and their durable subscriptions. It is safe for
// concurrent use. It starts no goroutines.
type Broker struct {
	dedupWindow time.Duration
	mu          struct {
		sync.Mutex
		topics map[string]*topicState
	}
}

// New returns an empty broker.
func New(opts *Options) *Broker {
	b := &Broker{dedupWindow: 2 * time.Minute}
	if opts != nil && opts.DedupWindow != 0 {
		b.dedupWindow = opts.DedupWindow
	}
	b.mu.topics = make(map[string]*topicState)
	return b
}

// topicState is one destination: its subscriptions and its dedup window.
// Lock order: Broker.mu, then topicState.mu, then subState.mu.
type topicState struct {
	name string
	mu   struct {
		sync.Mutex
		subs  map[string]*subState
		seen  map[string]time.Time // dedup key → when sent
		order []seenEntry          // dedup keys by send time, to expire them
		seq   uint64
	}
}

type seenEntry struct {
	key string
	at  time.Time
}

func (b *Broker) topic(name string) *topicState {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts := b.mu.topics[name]
	if ts == nil {
		ts = &topicState{name: name}
		ts.mu.subs = make(map[string]*subState)
		ts.mu.seen = make(map[string]time.Time)
		b.mu.topics[name] = ts
	}
	return ts
}

// CreateSubscription creates the durable subscription sub on topic, if it
// does not exist yet. From then on it keeps every message sent to topic
// until one of its Subscriptions acknowledges it. Messages sent to a topic
// before a subscription exists are not kept for it.
func (b *Broker) CreateSubscription(topic, sub string) {
	b.topic(topic).sub(sub)
}

// DeleteSubscription removes the durable subscription and its messages.
// Subscriptions attached to it see ErrClosed from then on.
func (b *Broker) DeleteSubscription(topic, sub string) {
	ts := b.topic(topic)
	ts.mu.Lock()
	s := ts.mu.subs[sub]
	delete(ts.mu.subs, sub)
	ts.mu.Unlock()
	if s != nil {
		s.mu.Lock()
		s.mu.deleted = true
		s.wakeLocked()
		s.mu.Unlock()
	}
}

// Pending reports how many messages the durable subscription holds that
// are not acknowledged (waiting and in flight); 0 when it does not exist.
func (b *Broker) Pending(topic, sub string) int {
	ts := b.topic(topic)
	ts.mu.Lock()
	s := ts.mu.subs[sub]
	ts.mu.Unlock()
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.queue) + len(s.mu.inflight)
}

func (ts *topicState) sub(name string) *subState {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	s := ts.mu.subs[name]
	if s == nil {
		s = &subState{name: name}
		s.mu.inflight = make(map[uint64]*entry)
		s.mu.wake = make(chan struct{})
		ts.mu.subs[name] = s
	}
	return s
}

// Topic returns a driver.Topic that sends to the named topic.
func (b *Broker) Topic(name string) *Topic {
	return &Topic{b: b, ts: b.topic(name)}
}

// Subscription attaches to the durable subscription sub of topic,
// creating it when it does not exist. Several Subscriptions attached to
// one durable subscription compete for its messages.
func (b *Broker) Subscription(topic, sub string) *Subscription {
	s := &Subscription{s: b.topic(topic).sub(sub)}
	s.mu.held = make(map[uint64]bool)
	return s
}

// Topic sends to one topic of a Broker. It is safe for concurrent use.
type Topic struct {
	b  *Broker
	ts *topicState
	mu struct {
		sync.Mutex
		closed bool
	}
}

var _ driver.Topic = (*Topic)(nil)

// Send delivers copies of msgs to every durable subscription of the topic,
// dropping those whose driver.DedupKey was sent within the dedup window. It
// never fails except after Close or when ctx has ended.
func (t *Topic) Send(ctx context.Context, msgs []*driver.Message) error {
	t.mu.Lock()
	closed := t.mu.closed
	t.mu.Unlock()
	if closed {
		return fmt.Errorf("mempubsub: send to topic %q: %w", t.ts.name, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ts := t.ts
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := time.Now()
	ts.expireLocked(now, t.b.dedupWindow)
	entries := make([]*entry, 0, len(msgs))
	for _, m := range msgs {
		if t.b.dedupWindow > 0 {
			key := driver.DedupKey(m)
			if _, dup := ts.mu.seen[key]; dup {
				continue
			}
			ts.mu.seen[key] = now
			ts.mu.order = append(ts.mu.order, seenEntry{key, now})
		}
		ts.mu.seq++
		entries = append(entries, &entry{seq: ts.mu.seq, msg: copyMessage(m), published: now})
	}
	if len(entries) == 0 {
		return nil
	}
	for _, s := range ts.mu.subs {
		s.mu.Lock()
		for _, e := range entries {
			c := *e
			s.mu.queue = append(s.mu.queue, &c)
		}
		s.wakeLocked()
		s.mu.Unlock()
	}
	return nil
}

// expireLocked forgets dedup keys older than window.
func (ts *topicState) expireLocked(now time.Time, window time.Duration) {
	n := 0
	for n < len(ts.mu.order) && now.Sub(ts.mu.order[n].at) >= window {
		if ts.mu.seen[ts.mu.order[n].key].Equal(ts.mu.order[n].at) {
			delete(ts.mu.seen, ts.mu.order[n].key)
		}
		n++
	}
	ts.mu.order = ts.mu.order[n:]
}

// IsRetryable reports false: mempubsub never fails transiently.
func (t *Topic) IsRetryable(error) bool { return false }

// Close makes later Sends fail. It does not affect the broker.
func (t *Topic) Close() error {
	t.mu.Lock()
	t.mu.closed = true
	t.mu.Unlock()
	return nil
}

func copyMessage(m *driver.Message) *driver.Message {
	attrs := make(map[string]string, len(m.Attributes))
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	return &driver.Message{Attributes: attrs, Key: m.Key, Data: slices.Clone(m.Data)}
}
