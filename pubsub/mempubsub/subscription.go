package mempubsub

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// entry is one message held by a durable subscription.
type entry struct {
	seq        uint64 // send order within the topic
	msg        *driver.Message
	published  time.Time
	deliveries int
	holder     *Subscription // while in flight
}

// subState is one durable subscription: the messages waiting (in send
// order) and those in flight. It also guards the fields of the
// Subscriptions attached to it.
type subState struct {
	name string
	mu   struct {
		sync.Mutex
		queue    []*entry          // waiting, ascending seq
		inflight map[uint64]*entry // by seq
		wake     chan struct{}     // closed and replaced on every change
		deleted  bool
	}
}

// wakeLocked wakes every Receive waiting on s.
func (s *subState) wakeLocked() {
	close(s.mu.wake)
	s.mu.wake = make(chan struct{})
}

// requeueLocked puts an in-flight entry back among the waiting ones, in
// send order, so that a key's messages are delivered again in order.
func (s *subState) requeueLocked(e *entry) {
	delete(s.mu.inflight, e.seq)
	e.holder = nil
	i, _ := slices.BinarySearchFunc(s.mu.queue, e.seq, func(x *entry, seq uint64) int {
		switch {
		case x.seq < seq:
			return -1
		case x.seq > seq:
			return 1
		}
		return 0
	})
	s.mu.queue = slices.Insert(s.mu.queue, i, e)
}

// ackID is the driver.AckID of a delivered message: the delivery it
// belongs to, so that an ID from an earlier delivery does nothing.
type ackID struct {
	sub      *subState
	seq      uint64
	delivery int
}

// Subscription is one attachment to a durable subscription. It is safe for
// concurrent use. Its fields are guarded by the subState's mutex.
type Subscription struct {
	s  *subState
	mu struct {
		// guarded by s.mu, not by a mutex of its own
		closed bool
		held   map[uint64]bool // seqs in flight to this Subscription
	}
}

var _ driver.Subscription = (*Subscription)(nil)

// Receive returns up to max waiting messages (at least one), oldest first,
// blocking until there is one or ctx ends.
func (h *Subscription) Receive(ctx context.Context, max int) ([]*driver.Message, error) {
	if max < 1 {
		max = 1
	}
	s := h.s
	for {
		s.mu.Lock()
		if err := h.usableLocked(); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		if len(s.mu.queue) > 0 {
			out := h.takeLocked(max)
			s.mu.Unlock()
			return out, nil
		}
		wake := s.mu.wake
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

func (h *Subscription) usableLocked() error {
	switch {
	case h.mu.closed:
		return fmt.Errorf("mempubsub: subscription %q: %w", h.s.name, ErrClosed)
	case h.s.mu.deleted:
		return fmt.Errorf("mempubsub: subscription %q was deleted: %w", h.s.name, ErrClosed)
	}
	return nil
}

// takeLocked moves up to max waiting entries in flight to h.
func (h *Subscription) takeLocked(max int) []*driver.Message {
	s := h.s
	n := min(max, len(s.mu.queue))
	out := make([]*driver.Message, n)
	for i, e := range s.mu.queue[:n] {
		e.deliveries++
		e.holder = h
		s.mu.inflight[e.seq] = e
		h.mu.held[e.seq] = true
		m := copyMessage(e.msg)
		m.AckID = ackID{sub: s, seq: e.seq, delivery: e.deliveries}
		m.Deliveries = e.deliveries
		m.PublishTime = e.published
		out[i] = m
	}
	clear(s.mu.queue[:n])
	s.mu.queue = s.mu.queue[n:]
	return out
}

// Ack removes the messages for good. IDs of earlier deliveries of a message
// that was redelivered since are ignored.
func (h *Subscription) Ack(ctx context.Context, ids []driver.AckID) error {
	return h.settle(ids, "ack", func(e *entry) { delete(h.s.mu.inflight, e.seq) })
}

// Nack puts the messages back to be delivered again, before newer ones.
func (h *Subscription) Nack(ctx context.Context, ids []driver.AckID) error {
	return h.settle(ids, "nack", h.s.requeueLocked)
}

func (h *Subscription) settle(ids []driver.AckID, op string, fn func(*entry)) error {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := h.usableLocked(); err != nil {
		return fmt.Errorf("mempubsub: %s: %w", op, err)
	}
	for _, id := range ids {
		a, ok := id.(ackID)
		if !ok || a.sub != s {
			return fmt.Errorf("mempubsub: %s of %T %v: %w", op, id, id, ErrForeignAckID)
		}
		e := s.mu.inflight[a.seq]
		if e == nil || e.holder != h || e.deliveries != a.delivery {
			continue // settled already, or redelivered since
		}
		delete(h.mu.held, a.seq)
		fn(e)
	}
	s.wakeLocked()
	return nil
}

// IsRetryable reports false: mempubsub never fails transiently.
func (h *Subscription) IsRetryable(error) bool { return false }

// Close detaches h: the messages in flight to it are delivered again,
// and later calls fail with ErrClosed. The durable subscription stays.
func (h *Subscription) Close() error {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.mu.closed {
		return nil
	}
	h.mu.closed = true
	for seq := range h.mu.held {
		if e := s.mu.inflight[seq]; e != nil && e.holder == h {
			s.requeueLocked(e)
		}
	}
	clear(h.mu.held)
	s.wakeLocked()
	return nil
}
