package rabbitpubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fjord-data/fjord/pubsub/driver"
	amqp "github.com/rabbitmq/amqp091-go"
)

// SubscriptionOptions configures OpenSubscription. The zero value works: a
// quorum queue bound to the exchange with "#", one active consumer at a
// time, prefetch 100.
type SubscriptionOptions struct {
	// Passive uses an existing queue as it is: OpenSubscription checks that
	// it exists and neither declares nor binds it.
	Passive bool
	// BindingKeys bind the queue to the exchange; nil means "#" (every
	// routing key of a topic exchange).
	BindingKeys []string
	// CompetingConsumers lets several Subscriptions on one queue (replicas
	// of a service) receive at the same time, sharing its messages; per-key
	// order across them is then lost. By default the queue is declared with
	// x-single-active-consumer: one Subscription receives, the others stand
	// by and take over when it goes away.
	CompetingConsumers bool
	// DeliveryLimit is the quorum queue's x-delivery-limit: after that many
	// failed deliveries (nacks, lost channels) the broker drops the message,
	// or dead-letters it when DeadLetterExchange is set. 0 leaves the
	// broker's default (unlimited before RabbitMQ 4.0, 20 since).
	DeliveryLimit int
	// DeadLetterExchange and DeadLetterRoutingKey are the queue's
	// x-dead-letter-exchange and x-dead-letter-routing-key.
	DeadLetterExchange   string
	DeadLetterRoutingKey string
	// Arguments are further queue.declare arguments; they override the
	// ones above.
	Arguments map[string]any
	// Prefetch is the consumer's QoS: how many unacknowledged messages the
	// broker sends ahead; 0 means 100.
	Prefetch int
}

// Subscription consumes one durable quorum queue. It implements
// driver.Subscription and is safe for concurrent use.
//
// Acks and nacks name a delivery tag of the channel the message came on.
// When that channel closes (broker restart, lost connection, Nack), the broker
// requeues every unacknowledged message; the next Receive opens a new
// channel and consumer (dialing again if needed), and acks of messages
// from the old channel return ErrStaleAck.
type Subscription struct {
	conn  *Conn
	queue string
	opts  SubscriptionOptions

	mu struct {
		sync.Mutex
		ch         *amqp.Channel
		deliveries <-chan amqp.Delivery
		gen        uint64 // counts channels opened; ackIDs carry it
		closed     bool
	}
}

var _ driver.Subscription = (*Subscription)(nil)

// ackID is a Subscription's driver.AckID: a delivery tag and the channel
// generation it belongs to.
type ackID struct {
	gen, tag uint64
}

// QueueArguments are the queue.declare arguments OpenSubscription uses for
// opts: x-queue-type=quorum, x-single-active-consumer unless
// CompetingConsumers, and the delivery limit and dead-letter settings.
func QueueArguments(opts *SubscriptionOptions) amqp.Table {
	args := amqp.Table{"x-queue-type": "quorum"}
	if !opts.CompetingConsumers {
		args["x-single-active-consumer"] = true
	}
	if opts.DeliveryLimit != 0 {
		args["x-delivery-limit"] = int64(opts.DeliveryLimit)
	}
	if opts.DeadLetterExchange != "" {
		args["x-dead-letter-exchange"] = opts.DeadLetterExchange
	}
	if opts.DeadLetterRoutingKey != "" {
		args["x-dead-letter-routing-key"] = opts.DeadLetterRoutingKey
	}
	for k, v := range opts.Arguments {
		args[k] = v
	}
	return args
}

// OpenSubscription declares the quorum queue (see QueueArguments), binds it
// to exchange, and returns a Subscription consuming it. With opts.Passive
// it only checks that the queue exists. opts may be nil.
func (c *Conn) OpenSubscription(ctx context.Context, exchange, queue string, opts *SubscriptionOptions) (*Subscription, error) {
	s := &Subscription{conn: c, queue: queue}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Prefetch <= 0 {
		s.opts.Prefetch = 100
	}
	if s.opts.BindingKeys == nil {
		s.opts.BindingKeys = []string{"#"}
	}
	ch, err := c.channel(ctx)
	if err != nil {
		return nil, err
	}
	defer ch.Close()
	if err := c.do(ctx, "declare queue", func() error { return s.declare(ch, exchange) }); err != nil {
		return nil, err
	}
	return s, nil
}

// declare checks the queue (Passive) or declares and binds it.
func (s *Subscription) declare(ch *amqp.Channel, exchange string) error {
	if s.opts.Passive {
		if _, err := ch.QueueDeclarePassive(s.queue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("rabbitpubsub: checking queue %q: %w", s.queue, err)
		}
		return nil
	}
	if _, err := ch.QueueDeclare(s.queue, true, false, false, false, QueueArguments(&s.opts)); err != nil {
		return fmt.Errorf("rabbitpubsub: declaring quorum queue %q: %w", s.queue, err)
	}
	for _, key := range s.opts.BindingKeys {
		if err := ch.QueueBind(s.queue, key, exchange, false, nil); err != nil {
			return fmt.Errorf("rabbitpubsub: binding queue %q to exchange %q with key %q: %w", s.queue, exchange, key, err)
		}
	}
	return nil
}

// consumerLocked returns the channel's deliveries and generation, opening
// a channel and a consumer when there is none or it has closed.
func (s *Subscription) consumerLocked(ctx context.Context) (<-chan amqp.Delivery, uint64, error) {
	if s.mu.closed {
		return nil, 0, ErrClosed
	}
	if s.mu.ch != nil && !s.mu.ch.IsClosed() {
		return s.mu.deliveries, s.mu.gen, nil
	}
	ch, err := s.conn.channel(ctx)
	if err != nil {
		return nil, 0, err
	}
	var deliveries <-chan amqp.Delivery
	err = s.conn.do(ctx, "consume", func() (err error) {
		if err := ch.Qos(s.opts.Prefetch, 0, false); err != nil {
			return &ConnectionError{Op: "set prefetch", Err: err}
		}
		deliveries, err = ch.Consume(s.queue, "", false, false, false, false, nil)
		return err
	})
	if err != nil {
		_ = ch.Close()
		if isRetryable(err) {
			return nil, 0, &ConnectionError{Op: "consume", Err: err}
		}
		return nil, 0, fmt.Errorf("rabbitpubsub: consuming queue %q: %w", s.queue, err)
	}
	s.mu.ch, s.mu.deliveries = ch, deliveries
	s.mu.gen++
	return deliveries, s.mu.gen, nil
}

// Receive waits until at least one message is available or ctx ends and
// returns up to n messages (at most the prefetch count). A closed channel or connection is a
// *ConnectionError; the next Receive consumes on a new channel.
func (s *Subscription) Receive(ctx context.Context, n int) ([]*driver.Message, error) {
	s.mu.Lock()
	deliveries, gen, err := s.consumerLocked(ctx)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	n = min(max(n, 1), s.opts.Prefetch)
	var msgs []*driver.Message
	select {
	case d, ok := <-deliveries:
		if !ok {
			return nil, s.lost(gen)
		}
		msgs = append(msgs, toDriver(&d, gen))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for len(msgs) < n {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return msgs, nil // the next Receive reports the loss
			}
			msgs = append(msgs, toDriver(&d, gen))
		default:
			return msgs, nil
		}
	}
	return msgs, nil
}

// lost reports a closed deliveries channel of generation gen.
func (s *Subscription) lost(gen uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	if s.mu.gen == gen && s.mu.ch != nil {
		_ = s.mu.ch.Close()
		s.mu.ch = nil
	}
	return &ConnectionError{Op: "receive", Err: amqp.ErrClosed}
}

func toDriver(d *amqp.Delivery, gen uint64) *driver.Message {
	m := decode(d.Headers, d.ContentType, d.Body)
	m.AckID = ackID{gen: gen, tag: d.DeliveryTag}
	m.Deliveries = deliveries(d)
	return m
}

// Ack acknowledges each message singly (multiple=false). Messages whose
// channel has closed since they were received are not acknowledged (the
// broker has requeued them): Ack acknowledges the others and then returns
// ErrStaleAck.
func (s *Subscription) Ack(ctx context.Context, ids []driver.AckID) error {
	return s.settle(ids, func(ch *amqp.Channel, tag uint64) error { return ch.Ack(tag, false) }, true)
}

// Nack gives messages back for redelivery by closing the subscription's
// channel: the broker puts every message received on it and not
// acknowledged back where it was, so a key's messages come again in
// order. (A quorum queue puts a message requeued with basic.nack behind
// the ones it has delivered since, out of its key's order.) The next
// Receive consumes on a new channel; acks of the other messages received
// before return ErrStaleAck, and those messages come again too. Package
// pubsub nacks only when a Router stops. Messages whose channel has
// closed are already back on the queue and are skipped.
func (s *Subscription) Nack(ctx context.Context, ids []driver.AckID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	current := false
	for _, id := range ids {
		a, ok := id.(ackID)
		if !ok {
			return fmt.Errorf("rabbitpubsub: ack ID %v (%T) is not from this driver", id, id)
		}
		current = current || a.gen == s.mu.gen && s.mu.ch != nil && !s.mu.ch.IsClosed()
	}
	if !current {
		return nil
	}
	ch := s.mu.ch
	s.mu.ch = nil
	if err := s.conn.do(ctx, "nack", ch.Close); err != nil && !errors.Is(err, amqp.ErrClosed) {
		var ce *ConnectionError
		if errors.As(err, &ce) {
			return err
		}
		return &ConnectionError{Op: "nack", Err: err}
	}
	return nil
}

func (s *Subscription) settle(ids []driver.AckID, op func(*amqp.Channel, uint64) error, staleIsError bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	stale := 0
	for _, id := range ids {
		a, ok := id.(ackID)
		if !ok {
			return fmt.Errorf("rabbitpubsub: ack ID %v (%T) is not from this driver", id, id)
		}
		if a.gen != s.mu.gen || s.mu.ch == nil || s.mu.ch.IsClosed() {
			stale++
			continue
		}
		if err := op(s.mu.ch, a.tag); err != nil {
			return &ConnectionError{Op: "settle", Err: err}
		}
	}
	if stale > 0 && staleIsError {
		return fmt.Errorf("%w (%d of %d messages)", ErrStaleAck, stale, len(ids))
	}
	return nil
}

// IsRetryable reports whether err from Receive, Ack or Nack may succeed if
// tried again: connection and channel losses are; ErrStaleAck, ErrClosed
// and configuration errors are not.
func (s *Subscription) IsRetryable(err error) bool { return isRetryable(err) }

// Close closes the subscription's channel: the broker requeues the
// messages received and not acknowledged. The queue stays. Close does not
// close the Conn.
func (s *Subscription) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil
	}
	s.mu.closed = true
	ch := s.mu.ch
	s.mu.ch = nil
	if ch != nil && !ch.IsClosed() {
		if err := ch.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
			return err
		}
	}
	return nil
}

// Features are what a Subscription with opts can promise: redelivery and
// delivery counts (quorum queues count deliveries); per-key order unless
// CompetingConsumers (one active consumer receives a queue in order;
// with several, messages of one key go to different consumers). RabbitMQ
// does not deduplicate.
func Features(opts *SubscriptionOptions) driver.Features {
	return driver.Features{
		OrderedKeys: opts == nil || !opts.CompetingConsumers,
		Redelivery:  true,
		Deliveries:  true,
	}
}

// Ping checks the broker connection (see Conn.Ping).
func (s *Subscription) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }
