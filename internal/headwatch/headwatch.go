// Package headwatch tracks a position that moves (a store's head, a read
// model's checkpoint) and wakes those waiting for it to pass a point.
// Event store backends embed a Head to implement driver.Watcher; projection
// and replica use one for WaitFor.
package headwatch

import (
	"context"
	"sync"
	"sync/atomic"
)

// Head is the position of the last committed record. The zero value is a
// head at 0. It is safe for concurrent use.
type Head struct {
	pos atomic.Uint64
	mu  struct {
		sync.Mutex
		changed chan struct{} // closed when pos moves; nil until someone waits
		err     error         // set by Close
	}
}

// Load returns the current head.
func (h *Head) Load() uint64 { return h.pos.Load() }

// Advance sets the head to p and wakes every waiter. A head that only
// moves forwards gives waiters the "at or beyond" guarantee.
func (h *Head) Advance(p uint64) {
	h.pos.Store(p)
	h.mu.Lock()
	if h.mu.changed != nil {
		close(h.mu.changed)
		h.mu.changed = nil
	}
	h.mu.Unlock()
}

// Raise moves the head to p if p is beyond it, and then wakes every
// waiter; a lower p changes nothing. Safe beside other Raise calls.
func (h *Head) Raise(p uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p <= h.pos.Load() {
		return
	}
	h.pos.Store(p)
	if h.mu.changed != nil {
		close(h.mu.changed)
		h.mu.changed = nil
	}
}

// Close wakes every waiter; Wait returns err from now on.
func (h *Head) Close(err error) {
	h.mu.Lock()
	h.mu.err = err
	if h.mu.changed != nil {
		close(h.mu.changed)
		h.mu.changed = nil
	}
	h.mu.Unlock()
}

// Wait blocks until the head is beyond after and returns it, or returns
// ctx.Err() when ctx ends first, or the error given to Close.
func (h *Head) Wait(ctx context.Context, after uint64) (uint64, error) {
	for {
		h.mu.Lock()
		if h.mu.err != nil {
			err := h.mu.err
			h.mu.Unlock()
			return 0, err
		}
		if p := h.pos.Load(); p > after {
			h.mu.Unlock()
			return p, nil
		}
		if h.mu.changed == nil {
			h.mu.changed = make(chan struct{})
		}
		ch := h.mu.changed
		h.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
