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

var _ driver.Topic = (*Topic)(nil)

// TopicOptions configure a Topic. The zero value (or nil) binds to the
// stream that already captures the subject.
type TopicOptions struct {
	// Stream, when set, is created, or updated to this configuration if
	// it exists, when the topic opens; its Subjects default to the
	// topic's subject and its Duplicates (the deduplication window) to
	// JetStream's two minutes. When nil, a stream must already capture
	// the subject.
	Stream *jetstream.StreamConfig
	// AckTimeout bounds the wait for a publish acknowledgement, whatever
	// the context of Send says; 0 is 5 seconds.
	AckTimeout time.Duration
	// MaxPending bounds the publishes awaiting an acknowledgement over all
	// Sends of the topic; more block Send for a while and then fail,
	// retryably. 0 is 4,000.
	MaxPending int
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
// a jetstream.JetStream because the topic sets up its own asynchronous
// publisher (acknowledgement timeout, pending limit), whose state Close
// releases. The caller keeps ownership of nc and closes it after the
// topic.
func OpenTopic(ctx context.Context, nc *nats.Conn, subject string, opts *TopicOptions) (*Topic, error) {
	if opts == nil {
		opts = &TopicOptions{}
	}
	ackTimeout := orDefault(opts.AckTimeout, 5*time.Second)
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(ackTimeout),
		jetstream.WithPublishAsyncMaxPending(orDefault(opts.MaxPending, 4000)))
	if err != nil {
		return nil, fmt.Errorf("natspubsub: opening topic %q: %w", subject, err)
	}
	if _, err := ensureStream(ctx, js, subject, opts.Stream); err != nil {
		return nil, fmt.Errorf("natspubsub: opening topic %q: %w", subject, err)
	}
	return &Topic{nc: nc, js: js, subject: subject, ackTimeout: ackTimeout}, nil
}

// Send publishes msgs to the topic's subject, pipelined: it sends them all
// and then waits for JetStream's acknowledgements, so a batch costs about
// one round trip. Each message carries its attributes as CloudEvents
// headers ("ce-id", "ce-source", …; Key as "ce-partitionkey") and a
// Nats-Msg-Id derived from its source and id, so that a message sent
// again within the stream's duplicate window is stored once.
//
// Messages are stored in the order of msgs. When the connection is down
// Send fails at once with ErrNotConnected, having sent nothing. Otherwise
// an error is a *PublishError naming the messages not acknowledged (some
// of which may have been stored nonetheless), or the error that stopped
// sending; messages after a failed one may have been stored, so a retry
// can store a key's messages out of order when the broker rejects one of
// them and not the next (a full stream, say).
func (t *Topic) Send(ctx context.Context, msgs []*driver.Message) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.mu.closed {
		return ErrClosed
	}
	if err := checkConnected(t.nc); err != nil {
		return err
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var sendErr error
	for _, m := range msgs {
		f, err := t.publish(m)
		if err != nil {
			sendErr = fmt.Errorf("natspubsub: publishing to %q: %w", t.subject, err)
			break
		}
		futures = append(futures, f)
	}
	waitErr := t.wait(ctx, futures)
	if sendErr != nil {
		return sendErr
	}
	return waitErr
}

func (t *Topic) publish(m *driver.Message) (jetstream.PubAckFuture, error) {
	nm := &nats.Msg{Subject: t.subject, Header: encodeHeaders(m.Attributes, m.Key), Data: m.Data}
	opts := []jetstream.PublishOpt{jetstream.WithRetryAttempts(0)} // callers retry, never the driver
	if id, ok := msgID(m); ok {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	return t.js.PublishMsgAsync(nm, opts...)
}

// wait waits for every future's acknowledgement, for ctx, or for the
// acknowledgement timeout.
func (t *Topic) wait(ctx context.Context, futures []jetstream.PubAckFuture) error {
	ctx, cancel := context.WithTimeout(ctx, t.ackTimeout)
	defer cancel()
	var perr *PublishError
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if perr == nil {
				perr = &PublishError{Err: err}
			}
			perr.Failed = append(perr.Failed, i)
		case <-ctx.Done():
			if perr == nil {
				perr = &PublishError{Err: ctx.Err()}
			}
			for j := i; j < len(futures); j++ {
				perr.Failed = append(perr.Failed, j)
			}
			return perr
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

// Close releases the topic's publisher; Sends after Close fail with
// ErrClosed. Close waits for Sends in progress. It leaves the connection
// open.
func (t *Topic) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.mu.closed {
		t.mu.closed = true
		t.js.CleanupPublisher()
	}
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
