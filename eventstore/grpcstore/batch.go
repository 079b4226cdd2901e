package grpcstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
	"github.com/fjord-data/fjord/eventstore/driver"
)

// pending is one Commit waiting for its AppendBatch call.
type pending struct {
	req  *esv1.AppendRequest
	size int           // encoded size of req
	done chan struct{} // closed when out or err is set
	out  *esv1.AppendOutcome
	err  error // the whole call's error, already mapped
	sent bool  // taken by a sender; guarded by batcher.mu
}

// batcher groups concurrent Commits into AppendBatch calls (client-side
// group commit). Up to maxCalls sender goroutines each take whatever is
// queued, up to maxAppends appends and maxBytes bytes, and send it as one
// call; a lone Commit goes at once. The senders are owned by the Store:
// started by the first Commit, stopped by Close.
type batcher struct {
	s          *Store
	maxAppends int
	maxBytes   int
	maxCalls   int
	wake       chan struct{} // capacity 1: the queue may be non-empty
	senders    sync.WaitGroup
	onEnqueue  func() // for tests: runs after every enqueue

	mu struct {
		sync.Mutex
		queue   []*pending
		started bool
		closed  bool
	}
}

func newBatcher(s *Store) *batcher {
	return &batcher{s: s, maxAppends: s.opts.MaxBatchAppends, maxBytes: s.opts.MaxBatchBytes,
		maxCalls: s.opts.MaxBatchCalls, wake: make(chan struct{}, 1)}
}

// enqueue queues p, starting the senders on first use. It returns
// ErrClosed after close.
func (b *batcher) enqueue(p *pending) error {
	b.mu.Lock()
	if b.mu.closed {
		b.mu.Unlock()
		return driver.ErrClosed
	}
	if !b.mu.started {
		b.mu.started = true
		for range b.maxCalls {
			b.senders.Go(b.run)
		}
	}
	b.mu.queue = append(b.mu.queue, p)
	b.mu.Unlock()
	b.signal()
	if b.onEnqueue != nil {
		b.onEnqueue()
	}
	return nil
}

// signal wakes an idle sender, if there is one.
func (b *batcher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// remove takes p out of the queue, unless a sender has taken it. It
// reports whether p was still queued.
func (b *batcher) remove(p *pending) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.sent {
		return false
	}
	b.mu.queue = slices.DeleteFunc(b.mu.queue, func(q *pending) bool { return q == p })
	return true
}

// take removes the longest prefix of the queue within the batch bounds
// (at least one append) and wakes another sender when some remain.
func (b *batcher) take() []*pending {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, size := 0, 0
	for n < len(b.mu.queue) && n < b.maxAppends {
		size += b.mu.queue[n].size
		if n > 0 && size > b.maxBytes {
			break
		}
		n++
	}
	if n == 0 {
		return nil
	}
	batch := slices.Clone(b.mu.queue[:n])
	b.mu.queue = slices.Delete(b.mu.queue, 0, n)
	for _, p := range batch {
		p.sent = true
	}
	if len(b.mu.queue) > 0 {
		b.signal()
	}
	return batch
}

// run is a sender goroutine: it sends batches until the Store closes.
func (b *batcher) run() {
	for {
		select {
		case <-b.s.closing.Done():
			return
		case <-b.wake:
		}
		for batch := b.take(); batch != nil; batch = b.take() {
			b.send(batch)
		}
	}
}

// send makes one AppendBatch call for batch and answers its Commits.
func (b *batcher) send(batch []*pending) {
	req := &esv1.AppendBatchRequest{Appends: make([]*esv1.AppendRequest, len(batch))}
	for i, p := range batch {
		req.Appends[i] = p.req
	}
	res, err := b.s.client.AppendBatch(b.s.closing, connect.NewRequest(req))
	if err == nil && len(res.Msg.GetOutcomes()) != len(batch) {
		err = fmt.Errorf("the server returned %d outcomes for %d appends", len(res.Msg.GetOutcomes()), len(batch))
	}
	if err != nil {
		err = b.s.batchError(err)
	}
	for i, p := range batch {
		if err != nil {
			p.err = err
		} else {
			p.out = res.Msg.GetOutcomes()[i]
		}
		close(p.done)
	}
}

// close refuses later Commits, answers the queued ones with ErrClosed and
// waits for the senders to stop; the Store's closing context must be done.
func (b *batcher) close() {
	b.mu.Lock()
	b.mu.closed = true
	queued := b.mu.queue
	b.mu.queue = nil
	for _, p := range queued {
		p.sent = true
	}
	b.mu.Unlock()
	for _, p := range queued {
		p.err = driver.ErrClosed
		close(p.done)
	}
	b.senders.Wait()
}

// Commit implements driver.Backend. It queues the batch for the next
// AppendBatch call, which carries the appends of every Commit queued
// meanwhile, and waits for its own outcome. When ctx ends while the batch
// is queued, Commit returns ctx.Err() and nothing was sent; once it has
// been sent, Commit returns at once with an error wrapping both
// driver.ErrUnknownOutcome and ctx.Err(). When the call as a whole fails
// (the network, the server shutting down) the error wraps
// driver.ErrUnknownOutcome too, except for refusals that prove nothing was
// appended (no token, a request too large).
func (s *Store) Commit(ctx context.Context, b *driver.Batch) (driver.Committed, error) {
	if s.closed.Load() {
		return driver.Committed{}, driver.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return driver.Committed{}, err
	}
	req := batchToProto(b)
	p := &pending{req: req, size: proto.Size(req), done: make(chan struct{})}
	if err := s.batch.enqueue(p); err != nil {
		return driver.Committed{}, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		if s.batch.remove(p) {
			return driver.Committed{}, ctx.Err()
		}
		select {
		case <-p.done: // answered meanwhile
		default:
			return driver.Committed{}, fmt.Errorf("grpcstore: the append was sent: %w: %w", driver.ErrUnknownOutcome, ctx.Err())
		}
	}
	if p.err != nil {
		return driver.Committed{}, p.err
	}
	return s.committed(ctx, b, p.out)
}

// committed maps one outcome of an AppendBatch call.
func (s *Store) committed(ctx context.Context, b *driver.Batch, out *esv1.AppendOutcome) (driver.Committed, error) {
	if e := out.GetError(); e != nil {
		ce := connect.NewWireError(connect.Code(e.GetCode()), errors.New(e.GetMessage()))
		for _, d := range e.GetDetails() {
			if ed, err := connect.NewErrorDetail(d); err == nil {
				ce.AddDetail(ed)
			}
		}
		return driver.Committed{}, s.mapError(ctx, ce)
	}
	res := out.GetOk()
	if res == nil {
		return driver.Committed{}, errors.New("grpcstore: the server returned an empty outcome")
	}
	c := driver.Committed{Duplicate: res.GetDuplicate(), Streams: make([]driver.StreamCommitted, len(res.GetResults()))}
	for i, r := range res.GetResults() {
		c.Streams[i] = driver.StreamCommitted{Version: r.GetVersion(), Position: r.GetPosition()}
	}
	if len(c.Streams) != len(b.Appends) {
		return driver.Committed{}, fmt.Errorf("grpcstore: the server returned %d results for %d streams", len(c.Streams), len(b.Appends))
	}
	return c, nil
}

// batchError maps the error of a whole AppendBatch call. Refusals the
// server sent before running any append are mapped as for any call; other
// failures leave the appends' outcome unknown.
func (s *Store) batchError(err error) error {
	if s.closed.Load() {
		return fmt.Errorf("grpcstore: the store closed with the append in flight: %w: %w", driver.ErrClosed, driver.ErrUnknownOutcome)
	}
	if connect.IsWireError(err) {
		switch connect.CodeOf(err) {
		case connect.CodeUnauthenticated, connect.CodePermissionDenied, connect.CodeInvalidArgument,
			connect.CodeResourceExhausted, connect.CodeUnimplemented:
			return s.mapError(context.Background(), err)
		}
	}
	return fmt.Errorf("grpcstore: the append may or may not have committed: %w: %w", driver.ErrUnknownOutcome, err)
}
