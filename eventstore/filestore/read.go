package filestore

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// Reads work in batches: each batch is fetched while holding the store's
// life lock shared (so Close waits for it, and then fails later batches
// with driver.ErrClosed), and yielded after releasing it.
const (
	readBatch    = 256     // records per batch
	scanBudget   = 1 << 14 // frames a filtered log scan examines per batch
	seqReadAhead = 1 << 20 // window of sequential log reads
	idxReadAhead = 64 << 10
)

// fetchFunc appends the next records to buf; more is false after the last
// batch.
type fetchFunc func(buf []driver.Record) (recs []driver.Record, more bool, err error)

func (s *Store) iterate(ctx context.Context, limit int, start func(rs *readers) (fetchFunc, error)) iter.Seq2[driver.Record, error] {
	return func(yield func(driver.Record, error) bool) {
		rs := &readers{pool: &s.windows}
		defer rs.release()
		var fetch fetchFunc
		var buf []driver.Record
		count := 0
		for {
			if err := ctx.Err(); err != nil {
				yield(driver.Record{}, err)
				return
			}
			if !s.enter() {
				yield(driver.Record{}, driver.ErrClosed)
				return
			}
			var err error
			more := true
			if fetch == nil {
				fetch, err = start(rs)
			}
			if err == nil && fetch != nil {
				buf, more, err = fetch(buf[:0])
			} else {
				buf, more = buf[:0], false
			}
			s.life.RUnlock()
			for i := range buf {
				if limit > 0 && count == limit {
					return
				}
				if err := ctx.Err(); err != nil {
					yield(driver.Record{}, err)
					return
				}
				count++
				if !yield(buf[i], nil) {
					return
				}
			}
			if err != nil {
				yield(driver.Record{}, err)
				return
			}
			if !more || (limit > 0 && count == limit) {
				return
			}
		}
	}
}

// ReadStream implements driver.Backend. It reads the stream index, then
// the records from the log.
func (s *Store) ReadStream(ctx context.Context, q driver.StreamQuery) iter.Seq2[driver.Record, error] {
	return s.iterate(ctx, q.Limit, func(rs *readers) (fetchFunc, error) {
		head := s.head.Load()
		r := rs.new(s.segments(), idxReadAhead)
		lo, hi := max(q.From, 1), ^uint64(0)
		if q.Backwards {
			lo, hi = 1, ^uint64(0)
			if q.From != 0 {
				hi = q.From
			}
		}
		var locs []loc
		return func(buf []driver.Record) ([]driver.Record, bool, error) {
			if lo > hi {
				return buf, false, nil
			}
			lower, upper := nameBounds(kStream, q.Stream, lo, hi)
			it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
			if err != nil {
				return buf, false, err
			}
			locs = locs[:0]
			var ok bool
			if q.Backwards {
				ok = it.Last()
			} else {
				ok = it.First()
			}
			var v uint64
			for ; ok && len(locs) < readBatch; ok = step(it, q.Backwards) {
				l, err := parseLoc(it.Value())
				if err != nil {
					it.Close()
					return buf, false, err
				}
				locs, v = append(locs, l), keyNum(it.Key())
			}
			more := ok
			if err := it.Close(); err != nil {
				return buf, false, err
			}
			if q.Backwards {
				hi = v - 1
				more = more && v > 1
			} else {
				lo = v + 1
			}
			for _, l := range locs {
				rec, err := r.record(l)
				if err != nil {
					return buf, false, err
				}
				if rec.Stream != q.Stream {
					return buf, false, fmt.Errorf("%w: stream index of %q points to an event of %q", driver.ErrCorrupt, q.Stream, rec.Stream)
				}
				if rec.Position > head { // committed after the read began
					if q.Backwards {
						continue
					}
					return buf, false, nil
				}
				buf = append(buf, rec)
			}
			return buf, more, nil
		}, nil
	})
}

func step(it *pebble.Iterator, backwards bool) bool {
	if backwards {
		return it.Prev()
	}
	return it.Next()
}

// ReadAll implements driver.Backend. Unfiltered reads and StreamPrefix
// filters scan the log; Category and EventTypes filters read their index.
func (s *Store) ReadAll(ctx context.Context, q driver.AllQuery) iter.Seq2[driver.Record, error] {
	return s.iterate(ctx, q.Limit, func(rs *readers) (fetchFunc, error) {
		until := s.head.Load()
		if q.Until != 0 && q.Until < until {
			until = q.Until
		}
		lo, hi := max(q.From, 1), until
		if q.Backwards && q.From != 0 && q.From < until {
			lo, hi = 1, q.From
		} else if q.Backwards {
			lo = 1
		}
		if lo > hi {
			return nil, nil
		}
		segs := s.segments()
		switch {
		case q.Filter.Category != "":
			return s.indexRead(rs, segs, kCat, []string{q.Filter.Category}, &q, lo, hi), nil
		case len(q.Filter.EventTypes) > 0:
			types := slices.Clone(q.Filter.EventTypes)
			slices.Sort(types)
			return s.indexRead(rs, segs, kType, slices.Compact(types), &q, lo, hi), nil
		case q.Backwards:
			return s.scanBackwards(rs, segs, &q, lo, hi), nil
		default:
			return s.scanForwards(rs, segs, &q, lo, hi)
		}
	})
}

// groupStart returns the sparse position index entry at or before pos.
func (s *Store) groupStart(pos uint64) (uint64, loc, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kPos}, UpperBound: posKey(nil, pos+1)})
	if err != nil {
		return 0, loc{}, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, loc{}, fmt.Errorf("%w: no position index entry at or before %d", driver.ErrCorrupt, pos)
	}
	l, err := parseLoc(it.Value())
	return keyNum(it.Key()), l, err
}

// matcher checks a frame against a stream-prefix filter without decoding it.
func matches(f *driver.Filter, h *frameHead) bool {
	return f.StreamPrefix == "" || bytes.HasPrefix(h.stream, []byte(f.StreamPrefix))
}

func (s *Store) scanForwards(rs *readers, segs []*segment, q *driver.AllQuery, lo, hi uint64) (fetchFunc, error) {
	_, start, err := s.groupStart(lo)
	if err != nil {
		return nil, err
	}
	r := rs.new(segs, seqReadAhead)
	seg, err := r.segment(start.seg)
	if err != nil {
		return nil, err
	}
	c := &cursor{r: r, seg: seg, off: int64(start.off)}
	return func(buf []driver.Record) ([]driver.Record, bool, error) {
		for scanned := 0; len(buf) < readBatch && scanned < scanBudget; scanned++ {
			p, at, ok, err := c.next()
			if err != nil {
				return buf, false, err
			}
			if !ok {
				return buf, false, fmt.Errorf("%w: the log ends before position %d", driver.ErrCorrupt, hi)
			}
			h, err := parseHead(p)
			if err != nil {
				return buf, false, corrupt(segs, at, err)
			}
			if h.position < lo {
				continue
			}
			if h.position > hi {
				return buf, false, nil
			}
			if matches(&q.Filter, &h) {
				rec, err := decodeRecord(p, &h)
				if err != nil {
					return buf, false, corrupt(segs, at, err)
				}
				buf = append(buf, rec)
			}
			if h.position == hi {
				return buf, false, nil
			}
		}
		return buf, true, nil
	}, nil
}

func corrupt(segs []*segment, at loc, err error) error {
	_, seg := findSegment(segs, at.seg)
	name := segmentName(at.seg)
	if seg != nil {
		name = seg.path
	}
	return &driver.CorruptionError{File: name, Offset: int64(at.off), Reason: err.Error()}
}

// scanBackwards reads the log one commit group at a time, from the group
// holding hi down to lo, and returns each group's records in reverse.
func (s *Store) scanBackwards(rs *readers, segs []*segment, q *driver.AllQuery, lo, hi uint64) fetchFunc {
	r := rs.new(segs, seqReadAhead)
	return func(buf []driver.Record) ([]driver.Record, bool, error) {
		gpos, start, err := s.groupStart(hi)
		if err != nil {
			return buf, false, err
		}
		seg, err := r.segment(start.seg)
		if err != nil {
			return buf, false, err
		}
		c := &cursor{r: r, seg: seg, off: int64(start.off)}
		for {
			p, at, ok, err := c.next()
			if err != nil {
				return buf, false, err
			}
			if !ok {
				return buf, false, fmt.Errorf("%w: the log ends before position %d", driver.ErrCorrupt, hi)
			}
			h, err := parseHead(p)
			if err != nil {
				return buf, false, corrupt(segs, at, err)
			}
			if h.position > hi {
				break
			}
			if h.position >= lo && matches(&q.Filter, &h) {
				rec, err := decodeRecord(p, &h)
				if err != nil {
					return buf, false, corrupt(segs, at, err)
				}
				buf = append(buf, rec)
			}
			if h.position == hi {
				break
			}
		}
		slices.Reverse(buf)
		if gpos <= lo {
			return buf, false, nil
		}
		hi = gpos - 1
		return buf, true, nil
	}
}

type posLoc struct {
	pos uint64
	at  loc
}

// indexRead reads the records listed by the index entries of names under
// prefix, merged by position, keeping those that match the whole filter.
func (s *Store) indexRead(rs *readers, segs []*segment, prefix byte, names []string, q *driver.AllQuery, lo, hi uint64) fetchFunc {
	r := rs.new(segs, idxReadAhead)
	var entries []posLoc
	its := make([]*pebble.Iterator, len(names))
	return func(buf []driver.Record) ([]driver.Record, bool, error) {
		if lo > hi {
			return buf, false, nil
		}
		defer func() {
			for i, it := range its {
				if it != nil {
					it.Close()
					its[i] = nil
				}
			}
		}()
		for i, name := range names {
			lower, upper := nameBounds(prefix, name, lo, hi)
			it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
			if err != nil {
				return buf, false, err
			}
			its[i] = it
			if q.Backwards {
				it.Last()
			} else {
				it.First()
			}
		}
		entries = entries[:0]
		for len(entries) < readBatch {
			best := -1
			var bestPos uint64
			for i, it := range its {
				if !it.Valid() {
					continue
				}
				p := keyNum(it.Key())
				if best < 0 || (!q.Backwards && p < bestPos) || (q.Backwards && p > bestPos) {
					best, bestPos = i, p
				}
			}
			if best < 0 {
				break
			}
			l, err := parseLoc(its[best].Value())
			if err != nil {
				return buf, false, err
			}
			entries = append(entries, posLoc{bestPos, l})
			step(its[best], q.Backwards)
		}
		more := len(entries) == readBatch
		if n := len(entries); n > 0 {
			if q.Backwards {
				hi = entries[n-1].pos - 1
				more = more && hi >= lo && entries[n-1].pos > 0
			} else {
				lo = entries[n-1].pos + 1
			}
		}
		for _, e := range entries {
			rec, err := r.record(e.at)
			if err != nil {
				return buf, false, err
			}
			if rec.Position != e.pos {
				return buf, false, corrupt(segs, e.at, fmt.Errorf("index entry for position %d points to position %d", e.pos, rec.Position))
			}
			if q.Filter.Match(rec.Stream, rec.Type) {
				buf = append(buf, rec)
			}
		}
		return buf, more, nil
	}
}
