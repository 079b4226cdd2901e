package natspubsub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fjord-data/fjord/pubsub/driver"
)

var (
	_ driver.Topic  = (*Topic)(nil)
	_ driver.Pinger = (*Topic)(nil)
)

// TopicOptions configure a Topic. The zero value (or nil) binds to the
// stream that already captures the subject.
type TopicOptions struct {
	// Stream, when set, is created, or updated to this configuration if
	// it exists, when the topic opens; its Subjects default to the
	// topic's subject and its Duplicates (the deduplication window) to
	// JetStream's two minutes. When nil, a stream must already capture
	// the subject.
	Stream *jetstream.StreamConfig
	// AckTimeout bounds the wait for a Send's publish acknowledgements,
	// whatever its context says; 0 is 5 seconds.
	AckTimeout time.Duration
}

// Topic publishes to one JetStream subject. It is safe for concurrent use.
type Topic struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	subject    string
	ackTimeout time.Duration
	mu         struct {
		sync.RWMutex
		closed bool
	}
}

// OpenTopic opens a topic that publishes to subject over nc, ensuring the
// stream first when opts.Stream is set. It takes a connection rather than
// a jetstream.JetStream because it publishes and collects the
// acknowledgements itself, per Send and with no state left between Sends
// (jetstream's asynchronous publisher keeps pending acknowledgements and
// a goroutine per JetStream context). The caller keeps ownership of nc
// and closes it after the topic.
func OpenTopic(ctx context.Context, nc *nats.Conn, subject string, opts *TopicOptions) (*Topic, error) {
	if opts == nil {
		opts = &TopicOptions{}
	}
	ackTimeout := orDefault(opts.AckTimeout, 5*time.Second)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natspubsub: opening topic %q: %w", subject, err)
	}
	if _, err := ensureStream(ctx, js, subject, opts.Stream); err != nil {
		return nil, fmt.Errorf("natspubsub: opening topic %q: %w", subject, err)
	}
	return &Topic{nc: nc, js: js, subject: subject, ackTimeout: ackTimeout}, nil
}

// Send publishes msgs to the topic's subject, pipelined: it publishes them
// all and then waits for JetStream's acknowledgements, so a batch costs
// about one round trip. Each message carries its attributes as CloudEvents
// headers ("ce-id", "ce-source", …; Key as "ce-partitionkey") and a
// Nats-Msg-Id derived from driver.DedupKey, so that a message sent again
// within the stream's duplicate window is stored once.
//
// Messages are stored in the order of msgs. When the connection is down
// Send fails at once with ErrNotConnected, having sent nothing. Otherwise
// an error is a *PublishError naming the messages not acknowledged (some
// of which may have been stored nonetheless), or the error that stopped
// publishing; messages after a failed one may have been stored, so a retry
// can store a key's messages out of order when the broker rejects one of
// them and not the next (a full stream, say). The wait for
// acknowledgements is bounded by ctx and TopicOptions.AckTimeout.
func (t *Topic) Send(ctx context.Context, msgs []*driver.Message) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.mu.closed {
		return ErrClosed
	}
	if err := checkConnected(t.nc); err != nil {
		return err
	}
	nms := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		nms[i] = &nats.Msg{Subject: t.subject, Header: encodeHeaders(m.Attributes, m.Key), Data: m.Data}
		if id, ok := msgID(m); ok {
			nms[i].Header.Set(jetstream.MsgIDHeader, id)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, t.ackTimeout)
	defer cancel()
	errs := make([]error, len(msgs))
	answered := make([]bool, len(msgs))
	published, err := pipeline(ctx, t.nc, nms, func(i int, r *nats.Msg) {
		answered[i] = true
		errs[i] = pubAckError(r)
	})
	if published < len(msgs) {
		return fmt.Errorf("natspubsub: publishing to %q: %w", t.subject, err)
	}
	var perr *PublishError
	for i := range msgs {
		if !answered[i] {
			errs[i] = err // ctx ended first
		}
		if errs[i] != nil {
			if perr == nil {
				perr = &PublishError{Err: errs[i]}
			}
			perr.Failed = append(perr.Failed, i)
		}
	}
	if perr != nil {
		return perr
	}
	return nil
}

// IsRetryable reports whether an error from Send may succeed if tried
// again: the connection is down or reconnecting, there is no stream
// leader or responder, or an acknowledgement timed out.
func (t *Topic) IsRetryable(err error) bool { return retryable(err) }

// Close marks the topic closed once the Sends in progress have
// returned; Sends after Close fail with ErrClosed. It leaves the
// connection open.
func (t *Topic) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.closed = true
	return nil
}

// Ping checks that the connection is up and JetStream answers.
func (t *Topic) Ping(ctx context.Context) error {
	if err := checkConnected(t.nc); err != nil {
		return err
	}
	if _, err := t.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("natspubsub: ping: %w", err)
	}
	return nil
}

// ensureStream creates or updates the stream of cfg (its Subjects
// defaulting to subject), or, when cfg is nil, finds the stream that
// captures subject.
func ensureStream(ctx context.Context, js jetstream.JetStream, subject string, cfg *jetstream.StreamConfig) (jetstream.Stream, error) {
	if cfg == nil {
		name, err := js.StreamNameBySubject(ctx, subject)
		if err != nil {
			return nil, fmt.Errorf("finding the stream that captures the subject: %w", err)
		}
		return js.Stream(ctx, name)
	}
	c := *cfg
	if len(c.Subjects) == 0 {
		c.Subjects = []string{subject}
	}
	s, err := js.CreateOrUpdateStream(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("ensuring stream %q: %w", c.Name, err)
	}
	return s, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Subject returns the subject the topic publishes to.
func (t *Topic) Subject() string { return t.subject }
