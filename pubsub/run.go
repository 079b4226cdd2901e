package pubsub

import (
	"context"
	"errors"
	"fmt"
	"github.com/fjord-data/fjord/internal/backoff"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// delivery is one received message until it is settled.
type delivery struct {
	dm      *driver.Message
	m       *Message // nil when invalid
	invalid error    // why fromDriver refused it
	kq      *keyQueue
	seq     uint64 // receive order within the Run
	// Failures so far; guarded by being handled by one worker at a time.
	attempts            int
	firstFail, lastFail time.Time
	park                string // reason, once it must be parked
	parkTries           int
}

// keyQueue holds the unsettled messages of one order key, in receive
// order. Its fields are guarded by runner.mu. A keyQueue is in exactly one
// place at a time: the work channel, a worker, a retry timer, or waiting
// for a batch (blocked > 0) — so one key is handled by one worker at a
// time.
type keyQueue struct {
	key     string
	msgs    []*delivery // not yet handled, head first
	blocked int         // messages of the key in an unfinished batch
	batch   *batch      // that batch
	running bool        // a worker is processing it
}

// batch is a group of messages for one batch handler. Its failure state is
// touched by one worker at a time.
type batch struct {
	rt         *route
	msgs       []*delivery
	collecting bool        // still taking messages; guarded by runner.mu
	timer      *time.Timer // MaxWait; guarded by runner.mu
	attempts   int
	first      time.Time
	park       string
	parkTries  int
}

// workItem is a key queue or a full batch ready for a worker.
type workItem struct {
	kq *keyQueue
	b  *batch
}

// runner is the state of one Router.Run.
type runner struct {
	r       *Router
	o       RouterOptions
	routes  map[string]*route
	def     Handler
	backoff delays
	work    chan workItem     // capacity MaxInFlight: sends never block
	acks    chan driver.AckID // to the acker
	slots   chan struct{}     // one token per message that may be in flight
	wg      sync.WaitGroup    // receiver and workers
	mu      struct {
		sync.Mutex
		keys       map[string]*keyQueue
		collecting map[*route]*batch
		timers     map[*time.Timer]bool
		unsettled  map[*delivery]bool
		received   uint64 // deliveries so far, to number them
		stopping   bool
	}
}

func newRun(r *Router, routes map[string]*route, def Handler) *runner {
	o := r.opts
	rn := &runner{r: r, o: o, routes: routes, def: def,
		backoff: delays{Min: o.MinBackoff, Max: o.MaxBackoff},
		work:    make(chan workItem, o.MaxInFlight),
		acks:    make(chan driver.AckID, o.AckBatch),
		slots:   make(chan struct{}, o.MaxInFlight),
	}
	for range o.MaxInFlight {
		rn.slots <- struct{}{}
	}
	rn.mu.keys = make(map[string]*keyQueue)
	rn.mu.collecting = make(map[*route]*batch)
	rn.mu.timers = make(map[*time.Timer]bool)
	rn.mu.unsettled = make(map[*delivery]bool)
	return rn
}

// errReceive marks the cause of a stop by a receive failure.
type errReceive struct{ err error }

func (e *errReceive) Error() string { return e.err.Error() }
func (e *errReceive) Unwrap() error { return e.err }

func (rn *runner) run(parent context.Context) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	ackerDone := make(chan struct{})
	go rn.acker(parent, ackerDone)
	rn.wg.Go(func() { rn.receive(ctx, cancel) })
	for range rn.o.Concurrency {
		rn.wg.Go(func() { rn.worker(ctx) })
	}
	<-ctx.Done()
	rn.wg.Wait()
	rn.stopTimers()
	close(rn.acks)
	<-ackerDone
	rn.nackUnsettled(parent)
	var re *errReceive
	if errors.As(context.Cause(ctx), &re) {
		return re.err
	}
	return parent.Err()
}

// receive fills the key queues until ctx ends or the subscription fails
// for good.
func (rn *runner) receive(ctx context.Context, stop context.CancelCauseFunc) {
	failures := 0
	for {
		n, err := rn.acquire(ctx)
		if err != nil {
			return
		}
		msgs, err := rn.r.sub.Receive(ctx, n)
		rn.release(n - len(msgs))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if h := rn.o.Hooks.OnReceiveError; h != nil {
				h(err)
			}
			if !rn.r.sub.IsRetryable(err) {
				rn.o.Logger.LogAttrs(ctx, slog.LevelError, "pubsub: receive failed", rn.logAttrs(slog.Any("err", err))...)
				stop(&errReceive{fmt.Errorf("pubsub: receive (consumer %q): %w", rn.o.Consumer, err)})
				return
			}
			failures++
			delay := rn.backoff.Delay(failures)
			rn.o.Logger.LogAttrs(ctx, slog.LevelWarn, "pubsub: receive failed, retrying", rn.logAttrs(slog.Any("err", err), slog.Duration("backoff", delay))...)
			if backoff.Sleep(ctx, delay) != nil {
				return
			}
			continue
		}
		failures = 0
		for _, dm := range msgs {
			rn.dispatch(dm)
		}
	}
}

// acquire takes between 1 and ReceiveBatch in-flight slots.
func (rn *runner) acquire(ctx context.Context) (int, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-rn.slots:
	}
	n := 1
	for n < rn.o.ReceiveBatch {
		select {
		case <-rn.slots:
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

func (rn *runner) release(n int) {
	for range n {
		rn.slots <- struct{}{}
	}
}

// dispatch appends a received message to its key's queue.
func (rn *runner) dispatch(dm *driver.Message) {
	d := &delivery{dm: dm}
	var key string
	d.m, d.invalid = fromDriver(dm)
	switch {
	case d.invalid == nil:
		key = d.m.OrderKey()
	case dm.Key != "":
		key = dm.Key
	default:
		key = dm.Attributes["id"]
	}
	if d.invalid != nil {
		d.m = nil
	}
	rn.mu.Lock()
	defer rn.mu.Unlock()
	rn.mu.received++
	d.seq = rn.mu.received
	rn.mu.unsettled[d] = true
	kq := rn.mu.keys[key]
	if kq != nil {
		d.kq = kq
		kq.msgs = append(kq.msgs, d)
		return
	}
	kq = &keyQueue{key: key, msgs: []*delivery{d}}
	d.kq = kq
	rn.mu.keys[key] = kq
	rn.work <- workItem{kq: kq}
}

func (rn *runner) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-rn.work:
			if it.kq != nil {
				rn.processKey(ctx, it.kq)
			} else {
				rn.processBatch(ctx, it.b)
			}
		}
	}
}

// routeFor returns the route of a valid message, nil when it has none.
func (rn *runner) routeFor(d *delivery) *route {
	if d.m == nil || d.park != "" {
		return nil
	}
	return rn.routes[d.m.Type]
}

// processKey handles the key's messages in order until the queue is empty,
// a message must wait (retry backoff, batch), or ctx ends.
func (rn *runner) processKey(ctx context.Context, kq *keyQueue) {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	kq.running = true
	defer func() { kq.running = false }()
	for ctx.Err() == nil {
		if len(kq.msgs) == 0 {
			if kq.blocked == 0 {
				delete(rn.mu.keys, kq.key)
			}
			return
		}
		d := kq.msgs[0]
		if rt := rn.routeFor(d); rt != nil && rt.batch != nil {
			if !rn.addToBatchLocked(kq, d, rt) {
				return // the batch it waits for re-queues it
			}
			continue
		}
		if kq.blocked > 0 {
			return
		}
		rn.mu.Unlock()
		done, delay := rn.handleOne(ctx, d)
		rn.mu.Lock()
		switch {
		case done:
			kq.msgs[0] = nil
			kq.msgs = kq.msgs[1:]
		case delay >= 0:
			rn.afterLocked(delay, func() { rn.work <- workItem{kq: kq} })
			return
		default:
			return // Run is ending: the message is given back
		}
	}
}

// addToBatchLocked moves the key's head message into the collecting batch
// of rt, reporting false when it must wait for an earlier batch first.
func (rn *runner) addToBatchLocked(kq *keyQueue, d *delivery, rt *route) bool {
	b := rn.mu.collecting[rt]
	if kq.blocked > 0 && (b == nil || kq.batch != b) {
		return false
	}
	if b == nil {
		b = &batch{rt: rt, collecting: true}
		rn.mu.collecting[rt] = b
		b.timer = rn.afterLocked(rt.opts.MaxWait, func() {
			if b.collecting {
				rn.flushLocked(b)
			}
		})
	}
	kq.msgs[0] = nil
	kq.msgs = kq.msgs[1:]
	kq.blocked++
	kq.batch = b
	b.msgs = append(b.msgs, d)
	if len(b.msgs) >= rt.opts.Size {
		rn.flushLocked(b)
	}
	return true
}

// flushLocked hands a collecting batch to the workers.
func (rn *runner) flushLocked(b *batch) {
	b.collecting = false
	if rn.mu.collecting[b.rt] == b {
		delete(rn.mu.collecting, b.rt)
	}
	if b.timer.Stop() {
		delete(rn.mu.timers, b.timer)
	}
	rn.work <- workItem{b: b}
}

// afterLocked runs fn with runner.mu held after d, unless Run is ending.
func (rn *runner) afterLocked(d time.Duration, fn func()) *time.Timer {
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		rn.mu.Lock()
		defer rn.mu.Unlock()
		delete(rn.mu.timers, t) // t is set: the caller held mu until then
		if !rn.mu.stopping {
			fn()
		}
	})
	rn.mu.timers[t] = true
	return t
}

func (rn *runner) stopTimers() {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	rn.mu.stopping = true
	for t := range rn.mu.timers {
		t.Stop()
	}
	clear(rn.mu.timers)
}

// handleOne handles d once. It reports done when d is settled, else the
// backoff before trying again, or a negative delay when Run is ending.
func (rn *runner) handleOne(ctx context.Context, d *delivery) (done bool, delay time.Duration) {
	if d.park != "" {
		return rn.tryPark(ctx, []*delivery{d})
	}
	if d.invalid != nil {
		d.park = "not a valid CloudEvent: " + d.invalid.Error()
		return rn.tryPark(ctx, []*delivery{d})
	}
	h := rn.def
	if rt := rn.routes[d.m.Type]; rt != nil {
		h = rt.handler
	}
	if h == nil {
		if rn.o.Unhandled == AckUnhandled {
			rn.ack(d)
			if hook := rn.o.Hooks.OnUnhandled; hook != nil {
				hook(d.m)
			}
			return true, 0
		}
		d.park = fmt.Sprintf("no handler for type %q", d.m.Type)
		return rn.tryPark(ctx, []*delivery{d})
	}
	msgs := []*Message{d.m}
	start := time.Now()
	err := rn.call(ctx, d.m, func(hctx context.Context) error { return h(hctx, d.m) })
	if err != nil && ctx.Err() != nil {
		return false, -1
	}
	d.attempts++
	info := HandleInfo{Messages: msgs, Attempt: d.attempts, Duration: time.Since(start), Err: err}
	if err == nil {
		rn.ack(d)
		if hook := rn.o.Hooks.OnHandled; hook != nil {
			hook(info)
		}
		return true, 0
	}
	now := time.Now()
	if d.firstFail.IsZero() {
		d.firstFail = now
	}
	d.lastFail = now
	if reason := rn.parkReason(err, d.attempts); reason != "" {
		d.park = reason
		return rn.tryPark(ctx, []*delivery{d})
	}
	info.RetryIn = rn.backoff.Delay(d.attempts)
	rn.onRetry(ctx, info)
	return false, info.RetryIn
}

// parkReason says why a failure parks its message, or "" to retry.
func (rn *runner) parkReason(err error, attempts int) string {
	switch {
	case errors.Is(err, ErrPoison):
		return "poison: " + describe(err)
	case attempts >= rn.o.MaxAttempts:
		return fmt.Sprintf("failed %d attempts: %s", attempts, describe(err))
	}
	return ""
}

func (rn *runner) onRetry(ctx context.Context, info HandleInfo) {
	if hook := rn.o.Hooks.OnRetry; hook != nil {
		hook(info)
	}
	rn.o.Logger.LogAttrs(ctx, slog.LevelWarn, "pubsub: handler failed, retrying", rn.logAttrs(
		slog.String("type", info.Messages[0].Type), slog.String("id", info.Messages[0].ID),
		slog.Int("messages", len(info.Messages)), slog.Int("attempt", info.Attempt),
		slog.Duration("backoff", info.RetryIn), slog.Any("err", info.Err))...)
}

// call runs one handler attempt under the handler timeout, with the
// trace context extracted from m (nil for batches), recovering panics.
func (rn *runner) call(ctx context.Context, m *Message, fn func(context.Context) error) (err error) {
	if rn.o.HandlerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rn.o.HandlerTimeout)
		defer cancel()
	}
	if m != nil && rn.o.Extract != nil {
		ctx = rn.o.Extract(ctx, m)
	}
	defer func() {
		if v := recover(); v != nil {
			pe := &PanicError{Value: v, Stack: debug.Stack()}
			rn.o.Logger.LogAttrs(ctx, slog.LevelError, "pubsub: handler panicked", rn.logAttrs(
				slog.Any("panic", v), slog.String("stack", string(pe.Stack)))...)
			err = pe
		}
	}()
	return fn(ctx)
}

// processBatch calls a batch handler, then settles its messages or
// schedules a retry.
func (rn *runner) processBatch(ctx context.Context, b *batch) {
	if ctx.Err() != nil {
		return
	}
	done, delay := rn.handleBatch(ctx, b)
	rn.mu.Lock()
	defer rn.mu.Unlock()
	switch {
	case done:
		rn.finishBatchLocked(b)
	case delay >= 0:
		rn.afterLocked(delay, func() { rn.work <- workItem{b: b} })
	}
}

func (rn *runner) handleBatch(ctx context.Context, b *batch) (done bool, delay time.Duration) {
	if b.park != "" {
		return rn.tryPark(ctx, b.msgs)
	}
	msgs := make([]*Message, len(b.msgs))
	for i, d := range b.msgs {
		msgs[i] = d.m
	}
	start := time.Now()
	err := rn.call(ctx, nil, func(hctx context.Context) error { return b.rt.batch(hctx, msgs) })
	if err != nil && ctx.Err() != nil {
		return false, -1
	}
	b.attempts++
	info := HandleInfo{Messages: msgs, Attempt: b.attempts, Duration: time.Since(start), Err: err}
	if err == nil {
		for _, d := range b.msgs {
			rn.ack(d)
		}
		if hook := rn.o.Hooks.OnHandled; hook != nil {
			hook(info)
		}
		return true, 0
	}
	now := time.Now()
	if b.first.IsZero() {
		b.first = now
	}
	for _, d := range b.msgs {
		d.attempts, d.firstFail, d.lastFail = b.attempts, b.first, now
	}
	if reason := rn.parkReason(err, b.attempts); reason != "" {
		b.park = "batch " + reason
		for _, d := range b.msgs {
			d.park = b.park
		}
		return rn.tryPark(ctx, b.msgs)
	}
	info.RetryIn = rn.backoff.Delay(b.attempts)
	rn.onRetry(ctx, info)
	return false, info.RetryIn
}

// finishBatchLocked releases the keys a settled batch held back.
func (rn *runner) finishBatchLocked(b *batch) {
	for _, d := range b.msgs {
		kq := d.kq
		kq.blocked--
		if kq.blocked > 0 {
			continue
		}
		kq.batch = nil
		switch {
		case kq.running:
			// Its worker sees blocked == 0 and carries on.
		case len(kq.msgs) > 0:
			rn.work <- workItem{kq: kq}
		default:
			delete(rn.mu.keys, kq.key)
		}
	}
}

// ack hands a settled message to the acker and frees its slot.
func (rn *runner) ack(d *delivery) {
	rn.mu.Lock()
	delete(rn.mu.unsettled, d)
	rn.mu.Unlock()
	rn.acks <- d.dm.AckID
	rn.release(1)
}

func (rn *runner) logAttrs(attrs ...slog.Attr) []slog.Attr {
	return append(attrs, slog.String("consumer", rn.o.Consumer), slog.String("topic", rn.o.Topic))
}
