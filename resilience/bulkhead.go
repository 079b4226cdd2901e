package resilience

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// BulkheadOptions configure a Bulkhead. The zero value allows 10
// concurrent calls and no queue.
type BulkheadOptions struct {
	// MaxConcurrent is the number of calls that may run at once (default 10).
	MaxConcurrent int
	// MaxQueue is how many calls may wait for a slot; more are rejected
	// with ErrBulkheadFull at once. 0: no queue.
	MaxQueue int
	// MaxWait bounds a queued call's wait (0: until its context ends).
	MaxWait time.Duration
}

// Bulkhead limits the calls running at once, with a bounded FIFO queue. It
// is safe for concurrent use and may be shared by pipelines. Taking and
// returning a free slot costs three atomic operations; the queue takes a
// mutex.
type Bulkhead struct {
	name     string
	o        BulkheadOptions
	inflight atomic.Int64
	waiting  atomic.Int64 // waiters queued or about to queue
	mu       struct {
		sync.Mutex
		queue []chan struct{}
	}
}

// NewBulkhead returns a bulkhead or a *ConfigError.
func NewBulkhead(dependency string, o BulkheadOptions) (*Bulkhead, error) {
	p := fmt.Sprintf("bulkhead %q", dependency)
	switch {
	case o.MaxConcurrent < 0:
		return nil, configErr(p, fmt.Sprintf("MaxConcurrent %d is negative", o.MaxConcurrent), "use 0 for the default of 10 or a positive limit")
	case o.MaxQueue < 0:
		return nil, configErr(p, fmt.Sprintf("MaxQueue %d is negative", o.MaxQueue), "use 0 for no queue or a positive length")
	case o.MaxWait < 0:
		return nil, configErr(p, fmt.Sprintf("MaxWait %v is negative", o.MaxWait), "use 0 to wait until the context ends, or a positive duration")
	}
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = 10
	}
	return &Bulkhead{name: dependency, o: o}, nil
}

// String describes the bulkhead as Pipeline.String prints it.
func (b *Bulkhead) String() string {
	return fmt.Sprintf("bulkhead(%q %d+%d queued)", b.name, b.o.MaxConcurrent, b.o.MaxQueue)
}

// InFlight returns the calls holding a slot.
func (b *Bulkhead) InFlight() int { return int(b.inflight.Load()) }

// Queued returns the calls waiting for a slot.
func (b *Bulkhead) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.mu.queue)
}

func (b *Bulkhead) tryTake() bool {
	for {
		n := b.inflight.Load()
		if n >= int64(b.o.MaxConcurrent) {
			return false
		}
		if b.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// acquire takes a slot, waiting in the queue if there is room. waited
// is how long the call queued (0: it did not).
func (b *Bulkhead) acquire(ctx context.Context) (waited time.Duration, err error) {
	if b.inflight.Add(1) <= int64(b.o.MaxConcurrent) {
		return 0, nil
	}
	b.inflight.Add(-1) // the slow path tries again under the lock
	if b.waiting.Load() > 0 {
		b.handOff() // our transient increment may have failed a release's try
	}
	start := time.Now()
	err = b.wait(ctx)
	return max(time.Since(start), 1), err
}

func (b *Bulkhead) full() error {
	return &RejectedError{Dependency: b.name, Policy: "bulkhead", Limit: b.o.MaxConcurrent, Reason: ErrBulkheadFull}
}

func (b *Bulkhead) wait(ctx context.Context) error {
	b.mu.Lock()
	// Announce the waiter before the last try, so that a release either
	// sees it or frees the slot before the try (see release).
	b.waiting.Add(1)
	if b.tryTake() {
		b.waiting.Add(-1)
		b.mu.Unlock()
		return nil
	}
	if len(b.mu.queue) >= b.o.MaxQueue {
		b.waiting.Add(-1)
		b.mu.Unlock()
		return b.full()
	}
	ch := make(chan struct{}, 1)
	b.mu.queue = append(b.mu.queue, ch)
	b.mu.Unlock()
	var timeout <-chan time.Time
	if b.o.MaxWait > 0 {
		t := time.NewTimer(b.o.MaxWait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return b.abandon(ch, ctx.Err())
	case <-timeout:
		return b.abandon(ch, b.full())
	}
}

// abandon leaves the queue; if a slot was handed over meanwhile it is
// passed on.
func (b *Bulkhead) abandon(ch chan struct{}, err error) error {
	b.mu.Lock()
	if i := slices.Index(b.mu.queue, ch); i >= 0 {
		b.mu.queue = slices.Delete(b.mu.queue, i, i+1)
		b.waiting.Add(-1)
		b.mu.Unlock()
		return err
	}
	b.mu.Unlock()
	b.release() // the slot arrived as we gave up
	return err
}

// release returns a slot, handing it to the first waiter if any.
func (b *Bulkhead) release() {
	b.inflight.Add(-1)
	if b.waiting.Load() == 0 {
		return
	}
	b.handOff()
}

// handOff gives free slots to queued calls, first in first out.
func (b *Bulkhead) handOff() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.mu.queue) > 0 && b.tryTake() {
		ch := b.mu.queue[0]
		b.mu.queue = b.mu.queue[1:]
		b.waiting.Add(-1)
		ch <- struct{}{}
	}
}
