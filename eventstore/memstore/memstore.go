// Package memstore is an in-memory event store backend: the reference
// implementation of the driver seam, for tests and examples. Nothing
// survives Close.
//
//	s := eventstore.New(memstore.New(), nil)
package memstore

import (
	"context"
	"iter"
	"sync"
	"time"

	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/internal/headwatch"
)

// Store keeps records in memory. It is safe for concurrent use.
type Store struct {
	head headwatch.Head
	mu   struct {
		sync.RWMutex
		closed  bool
		records []driver.Record     // records[p-1] has position p; never modified once appended
		streams map[string][]uint64 // stream → positions, in version order
		ids     map[[16]byte]uint64 // event ID → position
		last    time.Time           // last commit time, to keep times non-decreasing
	}
}

var (
	_ driver.Backend = (*Store)(nil)
	_ driver.Watcher = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	s := &Store{}
	s.mu.streams = make(map[string][]uint64)
	s.mu.ids = make(map[[16]byte]uint64)
	return s
}

// Commit implements driver.Backend.
func (s *Store) Commit(ctx context.Context, b *driver.Batch) (driver.Committed, error) {
	if err := ctx.Err(); err != nil {
		return driver.Committed{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return driver.Committed{}, driver.ErrClosed
	}
	c, dup, err := driver.MatchDuplicate(b, s.lookupLocked)
	if err != nil || dup {
		return c, err
	}
	for i, a := range b.Appends {
		if v := uint64(len(s.mu.streams[a.Stream])); !a.Expected.Check(v) {
			return driver.Committed{}, &driver.ConflictError{Index: i, Actual: v}
		}
	}
	now := time.Now().UTC()
	if now.Before(s.mu.last) {
		now = s.mu.last
	}
	s.mu.last = now
	c.Streams = make([]driver.StreamCommitted, len(b.Appends))
	for i, a := range b.Appends {
		positions := s.mu.streams[a.Stream]
		for _, e := range a.Events {
			p := uint64(len(s.mu.records)) + 1
			positions = append(positions, p)
			e.Data, e.Metadata = clone(e.Data), clone(e.Metadata)
			s.mu.records = append(s.mu.records, driver.Record{Event: e, Stream: a.Stream,
				Version: uint64(len(positions)), Position: p, Time: now})
			s.mu.ids[e.ID] = p
		}
		s.mu.streams[a.Stream] = positions
		c.Streams[i] = driver.StreamCommitted{Version: uint64(len(positions)), Position: positions[len(positions)-1]}
	}
	s.head.Advance(uint64(len(s.mu.records)))
	return c, nil
}

func (s *Store) lookupLocked(id [16]byte) (driver.Record, bool, error) {
	p, ok := s.mu.ids[id]
	if !ok {
		return driver.Record{}, false, nil
	}
	return s.mu.records[p-1], true, nil
}

// ReadStream implements driver.Backend.
func (s *Store) ReadStream(ctx context.Context, q driver.StreamQuery) iter.Seq2[driver.Record, error] {
	return func(yield func(driver.Record, error) bool) {
		s.mu.RLock()
		closed, positions, records := s.mu.closed, s.mu.streams[q.Stream], s.mu.records
		s.mu.RUnlock()
		if closed {
			yield(driver.Record{}, driver.ErrClosed)
			return
		}
		n := uint64(len(positions))
		i, step, end := int64(q.From)-1, int64(1), int64(n)
		if q.From == 0 {
			i = 0
		}
		if q.Backwards {
			step, end = -1, -1
			if q.From == 0 || q.From > n {
				i = int64(n) - 1
			}
		}
		for count := 0; i != end && i >= 0 && i < int64(n); i += step {
			if q.Limit > 0 && count == q.Limit {
				return
			}
			if err := ctx.Err(); err != nil {
				yield(driver.Record{}, err)
				return
			}
			count++
			if !yield(records[positions[i]-1], nil) {
				return
			}
		}
	}
}

// ReadAll implements driver.Backend.
func (s *Store) ReadAll(ctx context.Context, q driver.AllQuery) iter.Seq2[driver.Record, error] {
	return func(yield func(driver.Record, error) bool) {
		s.mu.RLock()
		closed, records := s.mu.closed, s.mu.records
		s.mu.RUnlock()
		if closed {
			yield(driver.Record{}, driver.ErrClosed)
			return
		}
		until := uint64(len(records))
		if q.Until != 0 && q.Until < until {
			until = q.Until
		}
		p, step := q.From, int64(1)
		if p == 0 {
			p = 1
		}
		if q.Backwards {
			step = -1
			if q.From == 0 || q.From > until {
				p = until
			}
		}
		for count := 0; p >= 1 && p <= until; p = uint64(int64(p) + step) {
			if err := ctx.Err(); err != nil {
				yield(driver.Record{}, err)
				return
			}
			r := records[p-1]
			if !q.Filter.Match(r.Stream, r.Type) {
				continue
			}
			if q.Limit > 0 && count == q.Limit {
				return
			}
			count++
			if !yield(r, nil) {
				return
			}
		}
	}
}

// StreamInfo implements driver.Backend.
func (s *Store) StreamInfo(ctx context.Context, stream string) (driver.StreamInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return driver.StreamInfo{}, driver.ErrClosed
	}
	positions := s.mu.streams[stream]
	if len(positions) == 0 {
		return driver.StreamInfo{}, driver.ErrStreamNotFound
	}
	first, last := s.mu.records[positions[0]-1], s.mu.records[positions[len(positions)-1]-1]
	return driver.StreamInfo{Version: last.Version, Position: last.Position, Created: first.Time, Updated: last.Time}, nil
}

// Head implements driver.Backend.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return 0, driver.ErrClosed
	}
	return uint64(len(s.mu.records)), nil
}

// WaitHead implements driver.Watcher.
func (s *Store) WaitHead(ctx context.Context, after uint64) (uint64, error) {
	return s.head.Wait(ctx, after)
}

// Close implements driver.Backend. It drops every record.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.closed = true
	s.mu.records, s.mu.streams, s.mu.ids = nil, nil, nil
	s.head.Close(driver.ErrClosed)
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
