package stomppubsub

import (
	"context"
	"fmt"
	"strings"
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
	// MaxHeaderLength bounds one header line, name and escaped value, of
	// the messages Send sends: a message with a longer attribute fails
	// with ErrTooLarge before anything is sent, rather than making the
	// broker close the connection. 0 means DefaultMaxHeaderLength;
	// negative, no check.
	MaxHeaderLength int
}

// DefaultMaxHeaderLength is ActiveMQ Classic's limit on one STOMP header
// line (its STOMP transport closes the connection on a longer one).
const DefaultMaxHeaderLength = 10240

// Topic sends to one STOMP destination ("/queue/orders", or
// VirtualTopic("orders") for fan-out on ActiveMQ Classic) over its own
// connection. It implements driver.Topic and is safe for concurrent use;
// concurrent Sends take turns.
type Topic struct {
	destination string
	groups      bool
	maxHeader   int

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
		t.mu.link.opts, t.groups, t.maxHeader = opts.Dial, opts.MessageGroups, opts.MaxHeaderLength
	}
	if t.maxHeader == 0 {
		t.maxHeader = DefaultMaxHeaderLength
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
// per batch. A message with a header line longer than
// TopicOptions.MaxHeaderLength fails the whole Send with ErrTooLarge
// before anything is sent. A lost connection is a *ConnectionError (the
// next Send dials again); ctx ending closes the connection and returns
// ctx's error.
func (t *Topic) Send(ctx context.Context, msgs []*driver.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	for _, m := range msgs {
		if err := t.checkHeaders(m); err != nil {
			return err
		}
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

// checkHeaders reports a header line of m longer than MaxHeaderLength.
func (t *Topic) checkHeaders(m *driver.Message) error {
	if t.maxHeader < 0 {
		return nil
	}
	h := append(headers(m), frame.ContentType, m.Attributes["datacontenttype"])
	if t.groups {
		h = append(h, "JMSXGroupID", m.Key)
	}
	for i := 0; i < len(h); i += 2 {
		if n := escapedLen(h[i]) + 1 + escapedLen(h[i+1]); n > t.maxHeader {
			return fmt.Errorf("%w: message %q: header %q is %d bytes, more than %d", ErrTooLarge, m.Attributes["id"], h[i], n, t.maxHeader)
		}
	}
	return nil
}

// escapedLen is the length of s in a STOMP 1.2 header, where '\\', ':',
// '\n' and '\r' take two bytes.
func escapedLen(s string) int {
	return len(s) + strings.Count(s, "\\") + strings.Count(s, ":") + strings.Count(s, "\n") + strings.Count(s, "\r")
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
