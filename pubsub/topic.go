package pubsub

import (
	"context"
	"errors"
	"fmt"
	"github.com/fjord-data/fjord/internal/backoff"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// ErrUnavailable is matched (errors.Is) by publish errors that may succeed
// if tried again later: the broker was down, busy or slow. The messages may
// or may not have been published; publishing them again is safe, since
// consumers and deduplicating brokers drop repeats of (source, id).
var ErrUnavailable = errors.New("pubsub: broker unavailable")

// ErrClosed is returned by a Topic or Router used after Close.
var ErrClosed = errors.New("pubsub: closed")

// PublishError is a failed publish, after Attempts driver Sends.
type PublishError struct {
	// Messages is how many messages the failed Send carried.
	Messages int
	// Attempts is how many times they were sent.
	Attempts int
	// Retryable reports whether publishing again may succeed; then
	// errors.Is(err, ErrUnavailable) is true.
	Retryable bool
	// Err is the driver's last error (joined with the caller's context
	// error when that ended the retries).
	Err error
}

// Error says how many messages failed after how many attempts, whether
// retrying may help, and why.
func (e *PublishError) Error() string {
	what := "failed"
	if e.Retryable {
		what = "failed, broker unavailable (retryable)"
	}
	return fmt.Sprintf("pubsub: publish of %d messages %s after %d attempts: %v", e.Messages, what, e.Attempts, e.Err)
}

// Unwrap returns the driver's error.
func (e *PublishError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true for retryable failures.
func (e *PublishError) Is(target error) bool { return target == ErrUnavailable && e.Retryable }

// TopicOptions tune a Topic. The zero value works.
type TopicOptions struct {
	// MaxBatch bounds the messages of one driver Send (default 100).
	// Concurrent Publish calls are coalesced up to it.
	MaxBatch int
	// MaxAttempts bounds the Sends of one batch when the driver reports
	// retryable errors (default 10; negative: until the callers' contexts
	// end).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the full-jitter exponential backoff
	// between attempts (defaults 20ms and 2s).
	MinBackoff, MaxBackoff time.Duration
	// Inject, when set, is called with the publisher's context on a copy of
	// each message before it is validated and sent: package telemetry sets
	// it to write "traceparent" and "tracestate" extensions.
	Inject func(ctx context.Context, m *Message)
	// Hooks observe publishing.
	Hooks TopicHooks
	// Logger receives retries and failures (nil: discard).
	Logger *slog.Logger
}

// TopicHooks are optional observers of a Topic; they must not block.
type TopicHooks struct {
	// OnPublish is called when a Publish call returns.
	OnPublish func(PublishInfo)
	// OnSend is called after each driver Send.
	OnSend func(SendInfo)
}

// PublishInfo describes one Publish call.
type PublishInfo struct {
	Messages int
	Duration time.Duration
	Err      error
}

// SendInfo describes one driver Send of a batch.
type SendInfo struct {
	// Messages and Requests are the batch's messages and the Publish calls
	// they came from.
	Messages, Requests int
	// Attempt counts from 1.
	Attempt  int
	Duration time.Duration
	Err      error
	// RetryIn is the backoff before the next attempt, when there is one.
	RetryIn time.Duration
}

func (o *TopicOptions) withDefaults() TopicOptions {
	var out TopicOptions
	if o != nil {
		out = *o
	}
	if out.MaxBatch <= 0 {
		out.MaxBatch = 100
	}
	if out.MaxAttempts == 0 {
		out.MaxAttempts = 10
	}
	if out.MinBackoff <= 0 {
		out.MinBackoff = 20 * time.Millisecond
	}
	if out.MaxBackoff <= 0 {
		out.MaxBackoff = 2 * time.Second
	}
	out.MaxBackoff = max(out.MaxBackoff, out.MinBackoff)
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out
}

// Topic publishes messages to one destination through a driver. It is
// safe for concurrent use. Concurrent Publish calls are coalesced into
// batched driver Sends (group commit: one Send in flight while the next
// group forms), which keeps each caller's messages in order and, for
// Publish calls that do not overlap, the order between them.
type Topic struct {
	d    driver.Topic
	opts TopicOptions
	wg   sync.WaitGroup // the sender goroutine
	mu   struct {
		sync.Mutex
		queue   []*publishReq
		sending bool // a sender goroutine is running
		closed  bool
	}
}

// NewTopic returns a Topic over d; the Topic owns d and closes it.
func NewTopic(d driver.Topic, opts *TopicOptions) *Topic {
	return &Topic{d: d, opts: opts.withDefaults()}
}

// publishReq is one Publish call waiting for its messages to be sent.
type publishReq struct {
	ctx  context.Context
	msgs []*driver.Message
	done chan error // buffered: the sender never blocks
	// guarded by Topic.mu
	taken   bool  // in a batch being sent
	lastErr error // the latest retryable Send error of its batch
}

// Publish validates msgs and sends them, returning once the broker has
// taken responsibility for all of them. An invalid message fails the whole
// call with an error wrapping *InvalidMessageError, and nothing is sent.
// Errors the driver reports as retryable are retried with backoff until
// TopicOptions.MaxAttempts or until ctx ends; the error then matches
// ErrUnavailable. On any error some of msgs may have been published. msgs
// are not modified (Inject works on copies); their Data must not change
// until Publish returns.
func (t *Topic) Publish(ctx context.Context, msgs ...*Message) error {
	start := time.Now()
	err := t.publish(ctx, msgs)
	if h := t.opts.Hooks.OnPublish; h != nil {
		h(PublishInfo{Messages: len(msgs), Duration: time.Since(start), Err: err})
	}
	return err
}

func (t *Topic) publish(ctx context.Context, msgs []*Message) error {
	if len(msgs) == 0 {
		return nil
	}
	dms, err := t.prepare(ctx, msgs)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pubsub: publish of %d messages: nothing sent: %w", len(msgs), err)
	}
	req := &publishReq{ctx: ctx, msgs: dms, done: make(chan error, 1)}
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return fmt.Errorf("pubsub: publish: %w", ErrClosed)
	}
	t.mu.queue = append(t.mu.queue, req)
	if !t.mu.sending {
		t.mu.sending = true
		t.wg.Add(1)
		go t.sendLoop()
	}
	t.mu.Unlock()
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return t.abandon(ctx, req)
	}
}

// abandon is Publish's return when ctx ends first.
func (t *Topic) abandon(ctx context.Context, req *publishReq) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case err := <-req.done:
		return err
	default:
	}
	if !req.taken {
		t.mu.queue = slices.DeleteFunc(t.mu.queue, func(r *publishReq) bool { return r == req })
		return fmt.Errorf("pubsub: publish of %d messages: nothing sent: %w", len(req.msgs), ctx.Err())
	}
	if req.lastErr != nil {
		return &PublishError{Messages: len(req.msgs), Retryable: true, Err: errors.Join(ctx.Err(), req.lastErr)}
	}
	return fmt.Errorf("pubsub: publish of %d messages not confirmed (they may have been sent): %w", len(req.msgs), ctx.Err())
}

// prepare copies, injects into, validates and converts msgs.
func (t *Topic) prepare(ctx context.Context, msgs []*Message) ([]*driver.Message, error) {
	out := make([]*driver.Message, len(msgs))
	for i, m := range msgs {
		if m == nil {
			return nil, fmt.Errorf("pubsub: publish: message %d of %d is nil: %w", i+1, len(msgs), ErrInvalidMessage)
		}
		c := *m
		if inject := t.opts.Inject; inject != nil {
			c.Extensions = maps.Clone(c.Extensions)
			inject(ctx, &c)
		}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("pubsub: publish: message %d of %d (id %q, type %q): nothing sent: %w", i+1, len(msgs), c.ID, c.Type, err)
		}
		out[i] = c.toDriver()
	}
	return out, nil
}

// sendLoop sends groups of queued requests until the queue is empty.
func (t *Topic) sendLoop() {
	defer t.wg.Done()
	for {
		group := t.takeGroup()
		if group == nil {
			return
		}
		err := t.sendGroup(group)
		for _, r := range group {
			r.done <- err
		}
	}
}

// takeGroup takes the queued requests that fit in MaxBatch (at least one),
// or ends the sender when there are none.
func (t *Topic) takeGroup() []*publishReq {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, count := 0, 0
	for n < len(t.mu.queue) && (n == 0 || count+len(t.mu.queue[n].msgs) <= t.opts.MaxBatch) {
		count += len(t.mu.queue[n].msgs)
		t.mu.queue[n].taken = true
		n++
	}
	if n == 0 {
		t.mu.sending = false
		return nil
	}
	group := slices.Clone(t.mu.queue[:n])
	t.mu.queue = slices.Delete(t.mu.queue, 0, n)
	return group
}

// sendGroup sends the group's messages in Sends of at most MaxBatch. Its
// context keeps the first caller's values and ends when every caller's
// context has ended.
func (t *Topic) sendGroup(group []*publishReq) error {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(group[0].ctx))
	defer cancel(nil)
	var live atomic.Int64
	live.Store(int64(len(group)))
	for _, r := range group {
		stop := context.AfterFunc(r.ctx, func() {
			if live.Add(-1) == 0 {
				cancel(context.Cause(r.ctx))
			}
		})
		defer stop()
	}
	var msgs []*driver.Message
	for _, r := range group {
		msgs = append(msgs, r.msgs...)
	}
	for chunk := range slices.Chunk(msgs, t.opts.MaxBatch) {
		if err := t.sendChunk(ctx, group, chunk); err != nil {
			return err
		}
	}
	return nil
}

// sendChunk sends one batch, retrying retryable errors.
func (t *Topic) sendChunk(ctx context.Context, group []*publishReq, chunk []*driver.Message) error {
	bo := delays{Min: t.opts.MinBackoff, Max: t.opts.MaxBackoff}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := t.d.Send(ctx, chunk)
		info := SendInfo{Messages: len(chunk), Requests: len(group), Attempt: attempt, Duration: time.Since(start), Err: err}
		if err == nil {
			t.onSend(info)
			return nil
		}
		retryable := t.d.IsRetryable(err)
		if !retryable || attempt == t.opts.MaxAttempts || ctx.Err() != nil {
			t.onSend(info)
			t.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "pubsub: publish failed",
				slog.Int("messages", len(chunk)), slog.Int("attempts", attempt), slog.Bool("retryable", retryable), slog.Any("err", err))
			if ctx.Err() != nil {
				err = errors.Join(context.Cause(ctx), err)
			}
			return &PublishError{Messages: len(chunk), Attempts: attempt, Retryable: retryable, Err: err}
		}
		t.setLastErr(group, err)
		info.RetryIn = bo.Delay(attempt)
		t.onSend(info)
		t.opts.Logger.LogAttrs(ctx, slog.LevelInfo, "pubsub: publish retrying",
			slog.Int("messages", len(chunk)), slog.Int("attempt", attempt), slog.Duration("backoff", info.RetryIn), slog.Any("err", err))
		if backoff.Sleep(ctx, info.RetryIn) != nil {
			return &PublishError{Messages: len(chunk), Attempts: attempt, Retryable: true, Err: errors.Join(context.Cause(ctx), err)}
		}
	}
}

func (t *Topic) setLastErr(group []*publishReq, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range group {
		r.lastErr = err
	}
}

func (t *Topic) onSend(info SendInfo) {
	if h := t.opts.Hooks.OnSend; h != nil {
		h(info)
	}
}

// Ping checks the broker connection when the driver can (driver.Pinger),
// for readiness probes; otherwise it returns errors.ErrUnsupported.
func (t *Topic) Ping(ctx context.Context) error {
	p, ok := t.d.(driver.Pinger)
	if !ok {
		return fmt.Errorf("pubsub: ping: the driver cannot: %w", errors.ErrUnsupported)
	}
	return p.Ping(ctx)
}

// Close waits for the Publish calls in progress to finish, then closes the
// driver topic. Later Publish calls fail with ErrClosed.
func (t *Topic) Close() error {
	t.mu.Lock()
	already := t.mu.closed
	t.mu.closed = true
	t.mu.Unlock()
	if already {
		return nil
	}
	t.wg.Wait()
	return t.d.Close()
}
