package streamsql

import (
	"sync"

	"github.com/fjord-data/fjord/streamsql/internal/exec"
)

// hub fans one query's output out to its push subscribers. Each
// subscriber has a bounded buffer of batches; publishing never blocks: a
// subscriber whose buffer is full is disconnected with ErrSlowSubscriber
// (the slow client policy), so one slow reader never holds up the query
// or the others.
//
// A hub with a converter (a push query's, whose subscribers all read the
// same columns) converts each batch to its public form once, under its
// lock, and every subscriber receives the same *batch: its Changes, their
// rows and values are shared and read-only. A hub without one (a
// materialized table's, whose subscribers each run their own
// projection) hands out the engine's changes, which are read-only too.
type hub struct {
	size    int
	convert func([]exec.Change) []Change // nil: subscribers convert
	mu      struct {
		sync.Mutex
		subs   []*subscriber // a slice: publish walks it once per batch
		closed bool
		err    error
	}
}

// batch is one published batch of changes, received by every subscriber.
// Exactly one of raw and out is set: out when the hub converts.
type batch struct {
	raw []exec.Change
	out []Change
}

type subscriber struct {
	ch  chan *batch
	idx int // position in hub.mu.subs while subscribed; guarded by the hub's lock
	mu  struct {
		sync.Mutex
		err error // why the subscription ended, set before ch closes
	}
}

// newHub returns a hub whose subscribers buffer size batches; convert,
// when not nil, turns each batch into its public form once for all.
func newHub(size int, convert func([]exec.Change) []Change) *hub {
	return &hub{size: size, convert: convert}
}

// subscribe adds a subscriber; snapshot, when set, runs under the hub's
// lock and returns what the subscriber receives first, so that nothing
// published is missed or seen twice.
func (h *hub) subscribe(snapshot func() []exec.Change) *subscriber {
	s := &subscriber{ch: make(chan *batch, h.size)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.closed {
		s.end(h.mu.err)
		return s
	}
	if snapshot != nil {
		if first := snapshot(); len(first) > 0 {
			s.ch <- h.batchOf(first)
		}
	}
	s.idx = len(h.mu.subs)
	h.mu.subs = append(h.mu.subs, s)
	return s
}

func (h *hub) batchOf(cs []exec.Change) *batch {
	if h.convert != nil {
		return &batch{out: h.convert(cs)}
	}
	return &batch{raw: cs}
}

// unsubscribe ends s (if it is still subscribed) with err; nil means the
// subscriber left.
func (h *hub) unsubscribe(s *subscriber, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.removeLocked(s) {
		s.end(err)
	}
}

// removeLocked removes s and reports whether it was subscribed.
func (h *hub) removeLocked(s *subscriber) bool {
	i := s.idx
	if i < 0 || i >= len(h.mu.subs) || h.mu.subs[i] != s {
		return false
	}
	last := len(h.mu.subs) - 1
	h.mu.subs[i] = h.mu.subs[last]
	h.mu.subs[i].idx = i
	h.mu.subs[last] = nil
	h.mu.subs = h.mu.subs[:last]
	s.idx = -1
	return true
}

// count returns the number of subscribers.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.mu.subs)
}

// publish delivers a batch of changes to every subscriber. A converting
// hub reads cs only during the call; otherwise cs is retained and the
// caller must not reuse it.
func (h *hub) publish(cs []exec.Change) {
	if len(cs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked(cs)
}

func (h *hub) publishLocked(cs []exec.Change) {
	if len(h.mu.subs) == 0 {
		return
	}
	b := h.batchOf(cs)
	for i := 0; i < len(h.mu.subs); {
		s := h.mu.subs[i]
		select {
		case s.ch <- b:
			i++
		default:
			h.removeLocked(s) // moves the last subscriber to i
			s.end(ErrSlowSubscriber)
		}
	}
}

// close ends every subscription with err (nil: the query ended).
func (h *hub) close(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.closed {
		return
	}
	h.mu.closed, h.mu.err = true, err
	for _, s := range h.mu.subs {
		s.idx = -1
		s.end(err)
	}
	clear(h.mu.subs)
	h.mu.subs = nil
}

func (s *subscriber) end(err error) {
	s.mu.Lock()
	s.mu.err = err
	s.mu.Unlock()
	close(s.ch)
}

func (s *subscriber) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.err
}
