package streamsql

import (
	"sync"

	"github.com/fjord-data/fjord/streamsql/internal/exec"
)

// hub fans one query's output out to its push subscribers. Each
// subscriber has a bounded buffer; publishing never blocks: a subscriber
// whose buffer is full is disconnected with ErrSlowSubscriber (the slow
// client policy), so one slow reader never holds up the query or the
// others.
type hub struct {
	size int
	mu   struct {
		sync.Mutex
		subs   map[*subscriber]struct{}
		closed bool
		err    error
	}
}

type subscriber struct {
	ch chan []exec.Change
	mu struct {
		sync.Mutex
		err error // why the subscription ended, set before ch closes
	}
}

func newHub(size int) *hub {
	h := &hub{size: size}
	h.mu.subs = map[*subscriber]struct{}{}
	return h
}

// subscribe adds a subscriber; snapshot, when set, runs under the hub's
// lock and returns what the subscriber receives first, so that nothing
// published is missed or seen twice.
func (h *hub) subscribe(snapshot func() []exec.Change) *subscriber {
	s := &subscriber{ch: make(chan []exec.Change, h.size)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.closed {
		s.end(h.mu.err)
		return s
	}
	if snapshot != nil {
		if first := snapshot(); len(first) > 0 {
			s.ch <- first
		}
	}
	h.mu.subs[s] = struct{}{}
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.mu.subs[s]; ok {
		delete(h.mu.subs, s)
		s.end(nil)
	}
}

// count returns the number of subscribers.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.mu.subs)
}

// publish delivers a batch of changes (which the caller must not reuse)
// to every subscriber.
func (h *hub) publish(cs []exec.Change) {
	if len(cs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked(cs)
}

func (h *hub) publishLocked(cs []exec.Change) {
	for s := range h.mu.subs {
		select {
		case s.ch <- cs:
		default:
			delete(h.mu.subs, s)
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
	for s := range h.mu.subs {
		s.end(err)
	}
	clear(h.mu.subs)
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
