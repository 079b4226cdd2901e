package natspubsub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fjord-data/fjord/pubsub/driver"
)

var (
	_ driver.Subscription = (*Subscription)(nil)
	_ driver.Pinger       = (*Subscription)(nil)
)

// SubscriptionOptions configure a Subscription. The zero value (or nil)
// binds to the stream that captures the subject, with the defaults below.
type SubscriptionOptions struct {
	// Stream, when set, is created or updated as TopicOptions.Stream is.
	// When nil, the stream is StreamName, or the one that captures the
	// subject.
	Stream     *jetstream.StreamConfig
	StreamName string
	// AckWait is how long JetStream waits for word on a delivered message
	// before it delivers it again; 0 is 30 seconds. An open Subscription
	// reports the messages it holds as in progress every AckWait/3, so
	// AckWait only matters when the process stops or loses its connection.
	AckWait time.Duration
	// MaxAckPending bounds the messages delivered and not yet
	// acknowledged; 0 is 1,000.
	MaxAckPending int
	// MaxDeliver bounds the deliveries of a message; 0 is unlimited
	// (package pubsub parks messages itself).
	MaxDeliver int
	// DeliverPolicy is where a consumer created by OpenSubscription
	// starts; the zero value is the start of the stream. It does not
	// change an existing consumer.
	DeliverPolicy jetstream.DeliverPolicy
	// ResumeFromAckFloor makes OpenSubscription rewind the durable
	// consumer to its acknowledgement floor when it has messages
	// delivered and not acknowledged (those of a process that died), so
	// that they come first, in stream order, instead of AckWait later and
	// behind newer messages. Messages acknowledged above the floor are
	// delivered again: handle them idempotently (package inbox does).
	//
	// It assumes that this Subscription is the only one reading the
	// consumer, as ordered consumption needs anyway: a rewind under
	// another open Subscription hands that one's messages out again, out
	// of order. On nats-server 2.14 and later it is the server's consumer
	// reset; on older servers the consumer is deleted and created again
	// with the same settings, starting at the stream sequence after the
	// floor (the version is the connected server's). Either way delivery
	// counts start again at 1.
	ResumeFromAckFloor bool
	// RequestTimeout bounds Ack and Nack waiting for the server, whatever
	// their context says; 0 is 5 seconds.
	RequestTimeout time.Duration
	// PollWait is how long one pull request waits on the server for a
	// message before Receive asks again; 0 is 30 seconds. Receive returns
	// as soon as a message arrives either way.
	PollWait time.Duration
}

// Subscription receives the messages of one durable JetStream pull
// consumer with explicit acknowledgement. It is safe for concurrent use.
//
// A message received and not yet acknowledged stays with the Subscription
// while it is open: a goroutine owned by the Subscription tells JetStream
// every AckWait/3 that such messages are in progress ("+WPI"), so a slow
// or retrying handler does not get a second copy of its message. They are
// delivered again after Nack, after Close, AckWait after an Ack or Nack of
// theirs failed, or AckWait after this process stops reaching the server.
//
// Order: JetStream delivers a consumer's messages in stream order, so the
// messages of one key arrive in the order they were stored; a message
// redelivered after a Nack or AckWait arrives after later ones already
// delivered. SubscriptionOptions.ResumeFromAckFloor keeps the order
// across a process that died holding messages.
type Subscription struct {
	nc             *nats.Conn
	consumer       jetstream.Consumer
	name           string
	requestTimeout time.Duration
	pollWait       time.Duration
	closing        context.Context // ends when Close begins
	close          context.CancelFunc
	progressDone   chan struct{} // closed when the progress goroutine has ended
	mu             struct {
		sync.Mutex
		closed bool
		// outstanding holds the ack subjects of messages received and
		// not yet acknowledged, numbered in the order received; Close
		// gives them back in that order.
		outstanding map[string]uint64
		received    uint64
	}
}

// OpenSubscription opens the durable pull consumer named consumer on the
// stream that holds subject, creating it (AckExplicit, filtered on
// subject) if it does not exist and updating AckWait, MaxAckPending and
// MaxDeliver if it does. The caller keeps ownership of nc and closes it
// after the subscription.
func OpenSubscription(ctx context.Context, nc *nats.Conn, subject, consumer string, opts *SubscriptionOptions) (*Subscription, error) {
	if opts == nil {
		opts = &SubscriptionOptions{}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natspubsub: opening subscription %q: %w", consumer, err)
	}
	streamName := opts.StreamName
	if opts.Stream != nil || streamName == "" {
		s, err := ensureStream(ctx, js, subject, opts.Stream)
		if err != nil {
			return nil, fmt.Errorf("natspubsub: opening subscription %q: %w", consumer, err)
		}
		streamName = s.CachedInfo().Config.Name
	}
	ackWait := orDefault(opts.AckWait, 30*time.Second)
	maxDeliver := opts.MaxDeliver
	if maxDeliver == 0 {
		maxDeliver = -1
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       consumer,
		FilterSubject: subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: orDefault(opts.MaxAckPending, 1000),
		MaxDeliver:    maxDeliver,
		DeliverPolicy: opts.DeliverPolicy,
	}
	c, err := ensureConsumer(ctx, js, streamName, cfg)
	if err == nil && opts.ResumeFromAckFloor {
		c, err = resumeFromAckFloor(ctx, nc, js, c)
	}
	if err != nil {
		return nil, fmt.Errorf("natspubsub: opening subscription %q on stream %q: %w", consumer, streamName, err)
	}
	s := &Subscription{nc: nc, consumer: c, name: consumer,
		requestTimeout: orDefault(opts.RequestTimeout, 5*time.Second),
		pollWait:       orDefault(opts.PollWait, 30*time.Second)}
	s.closing, s.close = context.WithCancel(context.Background())
	s.mu.outstanding = make(map[string]uint64)
	s.progressDone = make(chan struct{})
	go s.reportProgress(max(ackWait/3, time.Millisecond)) // ends when Close begins; Close waits for it
	return s, nil
}

// reportProgress tells JetStream every interval that the messages held
// are in progress, until Close begins. A report that does not get through
// (the connection is down) is simply missed: AckWait then runs its
// course.
func (s *Subscription) reportProgress(interval time.Duration) {
	defer close(s.progressDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.closing.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		held := slices.Collect(maps.Keys(s.mu.outstanding))
		s.mu.Unlock()
		for _, subj := range held {
			_ = s.nc.Publish(subj, []byte("+WPI")) // best effort, see above
		}
	}
}

// ensureConsumer binds to the durable consumer of cfg when it exists with
// the same settings, and otherwise creates or updates it: attaching again
// is then no configuration change (a cluster-wide proposal, and on older
// servers a reset of redelivery counts). Where an existing consumer
// starts is not a setting that changes (the server refuses it).
func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := js.Consumer(ctx, stream, cfg.Durable)
	if err == nil {
		have := c.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = have.DeliverPolicy, have.OptStartSeq, have.OptStartTime
		if have.FilterSubject == cfg.FilterSubject && have.AckPolicy == cfg.AckPolicy && have.AckWait == cfg.AckWait &&
			have.MaxAckPending == cfg.MaxAckPending && have.MaxDeliver == cfg.MaxDeliver && have.DeliverPolicy == cfg.DeliverPolicy {
			return c, nil
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	return js.CreateOrUpdateConsumer(ctx, stream, cfg)
}

// resumeFromAckFloor rewinds c to its acknowledgement floor when it has
// messages pending acknowledgement (see
// SubscriptionOptions.ResumeFromAckFloor).
func resumeFromAckFloor(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, c jetstream.Consumer) (jetstream.Consumer, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.NumAckPending == 0 {
		return c, nil
	}
	if serverAtLeast(nc.ConnectedServerVersion(), 2, 14) {
		if _, err := js.ResetConsumer(ctx, info.Stream, info.Name); err != nil {
			return nil, fmt.Errorf("resetting to the ack floor (stream sequence %d): %w", info.AckFloor.Stream, err)
		}
		return c, nil
	}
	// No consumer reset before 2.14: start a new consumer after the floor.
	cfg := info.Config
	cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1, nil
	if err := js.DeleteConsumer(ctx, info.Stream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("deleting to resume from the ack floor: %w", err)
	}
	c, err = js.CreateConsumer(ctx, info.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating again from stream sequence %d: %w", cfg.OptStartSeq, err)
	}
	return c, nil
}

// serverAtLeast reports whether the server version v ("2.14.0",
// "2.15.2-beta") is at least major.minor.
func serverAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// Receive returns between 1 and max messages: those available at once, or
// else the first to arrive. It returns ctx.Err() when ctx ends first, and
// ErrClosed when the subscription closes first. Each message's AckID is
// its JetStream acknowledgement subject; Deliveries and PublishTime come
// from JetStream's metadata. When the connection is down Receive fails at
// once with ErrNotConnected. A message whose pull was cancelled by ctx
// comes back after AckWait.
func (s *Subscription) Receive(ctx context.Context, max int) ([]*driver.Message, error) {
	if max < 1 {
		return nil, fmt.Errorf("natspubsub: Receive max %d: must be at least 1", max)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.closing, cancel)
	defer stop()
	for {
		if s.closing.Err() != nil {
			return nil, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := checkConnected(s.nc); err != nil {
			return nil, err
		}
		batch, err := s.consumer.FetchNoWait(max)
		if err != nil {
			return nil, s.receiveErr(ctx, err)
		}
		msgs, err := s.collect(batch)
		if len(msgs) == 0 && err == nil {
			msgs, err = s.poll(ctx)
		}
		if len(msgs) > 0 {
			// Messages taken are the caller's, whatever ended the pull:
			// returned with an error they would be held until Close.
			return msgs, nil
		}
		if err != nil {
			return nil, s.receiveErr(ctx, err)
		}
	}
}

// poll waits for one message for up to PollWait.
func (s *Subscription) poll(ctx context.Context) ([]*driver.Message, error) {
	pctx, cancel := context.WithTimeout(ctx, s.pollWait)
	defer cancel()
	if d, _ := pctx.Deadline(); time.Until(d) < 10*time.Millisecond {
		<-pctx.Done() // too short for a pull request to expire on the server
		return nil, nil
	}
	batch, err := s.consumer.Fetch(1, jetstream.FetchContext(pctx))
	if err != nil {
		return nil, err
	}
	msgs, err := s.collect(batch)
	if err != nil && ctx.Err() == nil && pctx.Err() != nil {
		err = nil // the poll ran out: ask again
	}
	return msgs, err
}

// receiveErr turns an error of a pull into Receive's error.
func (s *Subscription) receiveErr(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case s.closing.Err() != nil:
		return ErrClosed
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("natspubsub: receiving from %q: %w", s.name, err)
}

// collect drains batch into driver messages, recording them as
// outstanding.
func (s *Subscription) collect(batch jetstream.MessageBatch) ([]*driver.Message, error) {
	var msgs []*driver.Message
	for m := range batch.Messages() {
		dm := &driver.Message{Data: m.Data(), AckID: m.Reply()}
		dm.Attributes, dm.Key = decodeHeaders(m.Headers())
		if md, err := m.Metadata(); err == nil {
			dm.Deliveries = int(md.NumDelivered)
			dm.PublishTime = md.Timestamp
		}
		msgs = append(msgs, dm)
	}
	err := batch.Error()
	if errors.Is(err, jetstream.ErrNoMessages) {
		err = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed { // Close has given back the others: give these back too
		for _, m := range msgs {
			_ = s.nc.Publish(m.AckID.(string), []byte("-NAK")) // else AckWait brings them back
		}
		return nil, ErrClosed
	}
	for _, m := range msgs {
		s.mu.received++
		s.mu.outstanding[m.AckID.(string)] = s.mu.received
	}
	return msgs, err
}

// Ack acknowledges messages and returns once JetStream has confirmed
// every acknowledgement (a double ack, pipelined: one round trip for the
// batch). A nil error therefore means the server recorded them, not just
// that they left this process; an error may leave some acknowledged, and
// acknowledging one again is harmless. Either way the messages are no
// longer reported in progress: those the error left unacknowledged are
// delivered again after AckWait.
func (s *Subscription) Ack(ctx context.Context, ids []driver.AckID) error {
	return s.settle(ctx, ids, []byte("+ACK"), "ack")
}

// Nack gives messages back for immediate redelivery (a negative
// acknowledgement without delay), confirmed by the server as Ack is.
func (s *Subscription) Nack(ctx context.Context, ids []driver.AckID) error {
	return s.settle(ctx, ids, []byte("-NAK"), "nack")
}

func (s *Subscription) settle(ctx context.Context, ids []driver.AckID, body []byte, what string) error {
	if len(ids) == 0 {
		return nil
	}
	subjects := make([]string, len(ids))
	for i, id := range ids {
		subj, ok := id.(string)
		if !ok || !strings.HasPrefix(subj, "$JS.ACK.") {
			return fmt.Errorf("natspubsub: %s: %v is not an AckID of this driver", what, id)
		}
		subjects[i] = subj
	}
	s.mu.Lock()
	closed := s.mu.closed
	// Settled or not, they are no longer reported in progress: when this
	// fails, AckWait brings them back (unless the ack got through).
	for _, subj := range subjects {
		delete(s.mu.outstanding, subj)
	}
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if err := checkConnected(s.nc); err != nil {
		return err
	}
	if err := s.request(ctx, subjects, body); err != nil {
		return fmt.Errorf("natspubsub: %s on %q: %w", what, s.name, err)
	}
	return nil
}

// request sends body to every subject and waits for the server to
// confirm each one.
func (s *Subscription) request(ctx context.Context, subjects []string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout)
	defer cancel()
	msgs := make([]*nats.Msg, len(subjects))
	for i, subj := range subjects {
		msgs[i] = &nats.Msg{Subject: subj, Data: body}
	}
	gone := false
	if _, err := pipeline(ctx, s.nc, msgs, func(_ int, r *nats.Msg) { gone = gone || noResponders(r) }); err != nil {
		return err
	}
	if gone {
		return nats.ErrNoResponders // the consumer is gone
	}
	return nil
}

// IsRetryable reports whether an error from Receive, Ack or Nack may
// succeed if tried again.
func (s *Subscription) IsRetryable(err error) bool { return retryable(err) }

// Close ends Receives in progress (they return ErrClosed) and gives the
// messages received and not acknowledged back for redelivery, waiting at
// most RequestTimeout for the server to have them. When the connection is
// down it gives nothing back: the server redelivers them after AckWait.
// The durable consumer stays, and the connection stays open. Close
// returns nil after the first time too.
func (s *Subscription) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	s.close()
	outstanding := s.mu.outstanding
	s.mu.outstanding = nil
	s.mu.Unlock()
	<-s.progressDone
	if len(outstanding) == 0 || checkConnected(s.nc) != nil {
		return nil
	}
	var errs []error
	for _, subj := range slices.SortedFunc(maps.Keys(outstanding), func(a, b string) int {
		return cmp.Compare(outstanding[a], outstanding[b])
	}) {
		errs = append(errs, s.nc.Publish(subj, []byte("-NAK")))
	}
	errs = append(errs, s.nc.FlushTimeout(s.requestTimeout))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("natspubsub: closing %q: giving back unacknowledged messages: %w", s.name, err)
	}
	return nil
}

// Ping checks that the connection is up and the consumer exists.
func (s *Subscription) Ping(ctx context.Context) error {
	if err := checkConnected(s.nc); err != nil {
		return err
	}
	if _, err := s.consumer.Info(ctx); err != nil {
		return fmt.Errorf("natspubsub: ping %q: %w", s.name, err)
	}
	return nil
}

// Features are what natspubsub supports: everything (see the package
// documentation for what OrderedKeys means with redelivery).
var Features = driver.Features{OrderedKeys: true, Dedup: true, Redelivery: true, Deliveries: true}
