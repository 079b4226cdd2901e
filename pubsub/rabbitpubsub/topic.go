package rabbitpubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fjord-data/fjord/pubsub/driver"
	amqp "github.com/rabbitmq/amqp091-go"
)

// TopicOptions configures OpenTopic. The zero value works: it declares a
// durable "topic" exchange and routes each message by its CloudEvents type.
type TopicOptions struct {
	// Passive uses an existing exchange: OpenTopic checks that it exists
	// (exchange.declare passive) instead of declaring it.
	Passive bool
	// Kind is the exchange type declared: "topic" (default), "direct",
	// "fanout", "headers", or a plugin's type ("x-consistent-hash").
	Kind string
	// Arguments are extra exchange.declare arguments ("alternate-exchange").
	Arguments map[string]any
	// RoutingKey returns a message's routing key; nil routes by the
	// CloudEvents "type" attribute.
	RoutingKey func(*driver.Message) string
}

// Topic publishes to one RabbitMQ exchange with publisher confirms. It
// implements driver.Topic and is safe for concurrent use; concurrent Sends
// take turns on the topic's channel, each pipelining its whole batch.
type Topic struct {
	conn     *Conn
	exchange string
	opts     TopicOptions
	dropping sync.WaitGroup // channels being closed after failed Sends

	mu struct {
		sync.Mutex
		ch      *amqp.Channel
		returns chan amqp.Return
		closes  chan *amqp.Error // why the channel closed
		closed  bool
	}
}

var _ driver.Topic = (*Topic)(nil)

// OpenTopic declares the exchange (or checks that it exists, with
// opts.Passive) and returns a Topic publishing to it. opts may be nil.
func (c *Conn) OpenTopic(ctx context.Context, exchange string, opts *TopicOptions) (*Topic, error) {
	t := &Topic{conn: c, exchange: exchange}
	if opts != nil {
		t.opts = *opts
	}
	if t.opts.Kind == "" {
		t.opts.Kind = amqp.ExchangeTopic
	}
	if t.opts.RoutingKey == nil {
		t.opts.RoutingKey = func(m *driver.Message) string { return m.Attributes["type"] }
	}
	ch, err := c.channel(ctx)
	if err != nil {
		return nil, err
	}
	defer ch.Close()
	err = c.do(ctx, "declare exchange", func() error {
		if t.opts.Passive {
			return ch.ExchangeDeclarePassive(exchange, t.opts.Kind, true, false, false, false, nil)
		}
		return ch.ExchangeDeclare(exchange, t.opts.Kind, true, false, false, false, amqp.Table(t.opts.Arguments))
	})
	if err != nil {
		return nil, fmt.Errorf("rabbitpubsub: declaring exchange %q: %w", exchange, err)
	}
	return t, nil
}

// channelLocked returns the topic's confirm-mode channel, opening one when
// there is none or it has closed.
func (t *Topic) channelLocked(ctx context.Context) (*amqp.Channel, chan amqp.Return, error) {
	if t.mu.closed {
		return nil, nil, ErrClosed
	}
	if t.mu.ch != nil && !t.mu.ch.IsClosed() {
		return t.mu.ch, t.mu.returns, nil
	}
	ch, err := t.conn.channel(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := t.conn.do(ctx, "enable publisher confirms", func() error { return ch.Confirm(false) }); err != nil {
		_ = ch.Close()
		return nil, nil, &ConnectionError{Op: "enable publisher confirms", Err: err}
	}
	// Returns arrive before the confirm of the same message, so one slot
	// suffices while Send reads them as it waits; it is drained after.
	t.mu.ch, t.mu.returns = ch, ch.NotifyReturn(make(chan amqp.Return, 16))
	t.mu.closes = ch.NotifyClose(make(chan *amqp.Error, 1))
	return t.mu.ch, t.mu.returns, nil
}

// dropLocked gives up the channel after a Send that did not finish
// cleanly, so that its late confirms and returns cannot be taken for a
// later Send's. The channel is closed in the background: a broker that
// stopped answering would hold channel.close for as long as the
// connection lives, and Send must return when ctx ends. Close waits for
// it.
func (t *Topic) dropLocked() {
	if t.mu.ch == nil {
		return
	}
	ch, returns := t.mu.ch, t.mu.returns
	t.mu.ch, t.mu.returns, t.mu.closes = nil, nil, nil
	t.dropping.Add(2)
	go func() {
		defer t.dropping.Done()
		_ = ch.Close()
	}()
	go func() {
		defer t.dropping.Done()
		for range returns { // late returns must not block the connection
		}
	}()
}

// Send publishes msgs as persistent messages with the mandatory flag, all
// of them before waiting, then waits for every publisher confirm. It
// returns nil once the broker has confirmed all of them; a message no
// queue is bound for is an *UnroutableError; a message AMQP cannot carry
// fails the whole Send with ErrTooLarge before anything is published; a negative confirm is
// ErrNacked; a lost connection or channel is a *ConnectionError (the next
// Send opens a new channel, dialing again if needed); ctx bounds the whole
// call. Messages with one Key keep their order: one channel publishes in
// order, and the broker keeps the order per queue.
func (t *Topic) Send(ctx context.Context, msgs []*driver.Message) (err error) {
	if len(msgs) == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ch, returns, err := t.channelLocked(ctx)
	if err != nil {
		return err
	}
	pubs, keys := make([]amqp.Publishing, len(msgs)), make([]string, len(msgs))
	frameMax := t.conn.frameMax()
	for i, m := range msgs {
		pubs[i], keys[i] = encode(m), t.opts.RoutingKey(m)
		if err := checkFits(&pubs[i], keys[i], frameMax); err != nil {
			return err // before publishing anything: the channel is still good
		}
	}
	defer func() {
		if err != nil && !errors.Is(err, ErrUnroutable) {
			err = t.closeReasonLocked(err)
			t.dropLocked()
		}
	}()
	confirms := make([]*amqp.DeferredConfirmation, len(msgs))
	for i := range msgs {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, t.exchange, keys[i], true, false, pubs[i])
		if err != nil {
			return &ConnectionError{Op: "publish", Err: err}
		}
		confirms[i] = dc
	}
	var returned []amqp.Return
	nacked := 0
	for _, dc := range confirms {
		if err := waitConfirm(ctx, dc, returns, &returned); err != nil {
			return err
		}
		if !dc.Acked() {
			nacked++
		}
	}
	// Every return precedes its message's confirm: all are in by now.
	for drained := false; !drained; {
		select {
		case r, ok := <-returns:
			if !ok {
				return &ConnectionError{Op: "confirm", Err: amqp.ErrClosed}
			}
			returned = append(returned, r)
		default:
			drained = true
		}
	}
	if ch.IsClosed() && nacked > 0 {
		// Pending confirms are nacked when the channel closes.
		return &ConnectionError{Op: "confirm", Err: amqp.ErrClosed}
	}
	if len(returned) > 0 {
		ue := &UnroutableError{Exchange: t.exchange, RoutingKey: returned[0].RoutingKey,
			ReplyCode: returned[0].ReplyCode, ReplyText: returned[0].ReplyText}
		for _, r := range returned {
			ue.IDs = append(ue.IDs, r.MessageId)
		}
		return ue
	}
	if nacked > 0 {
		return fmt.Errorf("%w: %d of %d messages on exchange %q", ErrNacked, nacked, len(msgs), t.exchange)
	}
	return nil
}

// closeReasonLocked replaces err by the broker's reason for closing the
// channel when there is one: publishing to an exchange that does not exist
// (404) or is forbidden (403) closes the channel, and that is no
// connection problem to retry.
func (t *Topic) closeReasonLocked(err error) error {
	select {
	case reason, ok := <-t.mu.closes:
		if ok && reason != nil && !isRetryable(reason) {
			return fmt.Errorf("rabbitpubsub: publishing to exchange %q: %w", t.exchange, reason)
		}
	default:
	}
	return err
}

// waitConfirm waits for dc while collecting returns, so that the
// connection's reader never blocks on a full returns channel.
func waitConfirm(ctx context.Context, dc *amqp.DeferredConfirmation, returns <-chan amqp.Return, returned *[]amqp.Return) error {
	for {
		select {
		case <-dc.Done():
			return nil
		case r, ok := <-returns:
			if !ok {
				// The channel closed; dc is done (nacked) as well.
				<-dc.Done()
				return &ConnectionError{Op: "confirm", Err: amqp.ErrClosed}
			}
			*returned = append(*returned, r)
		case <-ctx.Done():
			return fmt.Errorf("rabbitpubsub: waiting for publisher confirms: %w", ctx.Err())
		}
	}
}

// IsRetryable reports whether err from Send may succeed if tried again:
// connection and channel losses, negative confirms and deadlines are;
// unroutable messages, cancellation and a closed Topic are not.
func (t *Topic) IsRetryable(err error) bool { return isRetryable(err) }

// Close closes the topic's channel; Sends after Close return ErrClosed.
// The exchange stays. Close does not close the Conn. It waits for
// channels given up by failed Sends to close.
func (t *Topic) Close() error {
	defer t.dropping.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return nil
	}
	t.mu.closed = true
	if t.mu.ch != nil && !t.mu.ch.IsClosed() {
		if err := t.mu.ch.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
			return err
		}
	}
	t.mu.ch = nil
	return nil
}

// Ping checks the broker connection (see Conn.Ping).
func (t *Topic) Ping(ctx context.Context) error { return t.conn.Ping(ctx) }
