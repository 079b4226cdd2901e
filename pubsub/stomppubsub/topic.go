package stomppubsub

import (
	"context"
	"sync"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// TopicOptions configures OpenTopic. The zero value works.
type TopicOptions struct {
	Dial DialOptions
	// MessageGroups sends each message's Key as its JMSXGroupID: ActiveMQ
	// then delivers all messages of one key to one consumer of a queue,
	// in order, also when several consumers compete for the queue
	// (SubscriptionOptions.CompetingConsumers).
	MessageGroups bool
}

// Topic sends to one STOMP destination ("/queue/orders", or
// VirtualTopic("orders") for fan-out on ActiveMQ Classic) over its own
// connection. It implements driver.Topic and is safe for concurrent use;
// concurrent Sends take turns.
type Topic struct {
	destination string
	groups      bool

	mu struct {
		sync.Mutex
		link   link
		closed bool
	}
}

var _ driver.Topic = (*Topic)(nil)

// OpenTopic connects to the broker at addr ("127.0.0.1:61613") and returns
// a Topic sending to destination. opts may be nil.
func OpenTopic(ctx context.Context, addr, destination string, opts *TopicOptions) (*Topic, error) {
	t := &Topic{destination: destination}
	t.mu.link.addr = addr
	if opts != nil {
		t.mu.link.opts, t.groups = opts.Dial, opts.MessageGroups
	}
	if _, err := t.mu.link.get(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// Send sends msgs as persistent messages in one STOMP transaction and
// waits for the receipt of its COMMIT: when Send returns nil the broker
// has stored every message (all or none of them, in order). go-stomp's
// Send holds its connection while it waits for a receipt, so receipts of
// single SENDs cannot be pipelined; a transaction asks for one receipt
// per batch. A lost connection is a *ConnectionError (the next Send dials
// again); ctx ending closes the connection and returns ctx's error.
func (t *Topic) Send(ctx context.Context, msgs []*driver.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return ErrClosed
	}
	conn, err := t.mu.link.get(ctx)
	if err != nil {
		return err
	}
	err = t.mu.link.bounded(ctx, func() error { return t.sendTx(conn, msgs) })
	if err != nil {
		t.mu.link.drop()
		if ctx.Err() != nil {
			return &ConnectionError{Op: "send", Err: err}
		}
		return classify("send", err)
	}
	return nil
}

func (t *Topic) sendTx(conn *stomp.Conn, msgs []*driver.Message) error {
	tx, err := conn.BeginWithError()
	if err != nil {
		return err
	}
	for _, m := range msgs {
		h := headers(m)
		err := tx.Send(t.destination, m.Attributes["datacontenttype"], m.Data, func(f *frame.Frame) error {
			f.Header.Set("persistent", "true")
			if t.groups && m.Key != "" {
				f.Header.Set("JMSXGroupID", m.Key)
			}
			for i := 0; i < len(h); i += 2 {
				f.Header.Set(h[i], h[i+1])
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return tx.CommitWithReceipt()
}

// IsRetryable reports whether err from Send may succeed if tried again:
// connection losses and deadlines are; broker ERROR frames, cancellation
// and a closed Topic are not.
func (t *Topic) IsRetryable(err error) bool { return isRetryable(err) }

// Close disconnects; Sends after Close return ErrClosed.
func (t *Topic) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return nil
	}
	t.mu.closed = true
	return t.mu.link.close()
}

// Ping checks that the broker answers on the topic's connection (one
// round trip), dialing once when the connection is gone.
func (t *Topic) Ping(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return ErrClosed
	}
	return t.mu.link.ping(ctx)
}
