package filestore

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"golang.org/x/sys/unix"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// request is one Commit waiting for the committer.
type request struct {
	ctx   context.Context
	batch *driver.Batch
	size  int // upper bound of its frames' size
	n     int // events
	res   driver.Committed
	err   error
	done  chan struct{}

	// The caller looks its event IDs up in the index before handing the
	// request over, in parallel with the committer; the committer then
	// checks only what committed after: IDs committed at or before seen
	// are in pre (when found).
	seen uint64
	pre  map[[16]byte]driver.Record
}

// Commit implements driver.Backend. It hands the batch to the committer and
// waits for the group it joins to be written and synced: a nil error means
// the events are durable. When ctx ends before the committer takes the
// batch, Commit returns ctx.Err() and nothing is written; once taken, the
// batch completes regardless of ctx.
func (s *Store) Commit(ctx context.Context, b *driver.Batch) (driver.Committed, error) {
	if err := ctx.Err(); err != nil {
		return driver.Committed{}, err
	}
	if err := s.failure(); err != nil {
		return driver.Committed{}, err
	}
	r := &request{ctx: ctx, batch: b, done: make(chan struct{})}
	for _, a := range b.Appends {
		for i := range a.Events {
			r.size += frameBound(a.Stream, &a.Events[i])
			r.n++
		}
	}
	if r.size > maxSegmentSize {
		return driver.Committed{}, fmt.Errorf("filestore: a commit of %d bytes does not fit in a segment (max %d)", r.size, maxSegmentSize)
	}
	s.send.RLock()
	if s.closed.Load() {
		s.send.RUnlock()
		return driver.Committed{}, driver.ErrClosed
	}
	if err := s.preLookup(r); err != nil {
		s.send.RUnlock()
		return driver.Committed{}, err
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		s.send.RUnlock()
		return driver.Committed{}, ctx.Err()
	}
	s.send.RUnlock()
	<-r.done
	return r.res, r.err
}

// preLookup looks r's event IDs up in the event-ID index. Every event at
// or below the head read first is in the index (the index batch is applied
// before the head advances).
func (s *Store) preLookup(r *request) error {
	r.seen = s.head.Load()
	var reader *logReader
	var key []byte
	for _, a := range r.batch.Appends {
		for i := range a.Events {
			if a.Events[i].GeneratedID {
				continue // new: MatchDuplicate does not look it up
			}
			id := a.Events[i].ID
			var l loc
			key = idKey(key[:0], id)
			ok, err := get(s.db, key, func(v []byte) (err error) {
				l, err = parseLoc(v)
				return err
			})
			if err != nil {
				return fmt.Errorf("filestore: event-ID index: %w", err)
			}
			if !ok {
				continue
			}
			if reader == nil {
				reader = newLogReader(s.segments(), 0)
			}
			rec, err := reader.record(l)
			if err != nil {
				return err
			}
			if r.pre == nil {
				r.pre = make(map[[16]byte]driver.Record)
			}
			r.pre[id] = driver.Record{Stream: rec.Stream, Version: rec.Version, Position: rec.Position}
		}
	}
	return nil
}

func (s *Store) failure() error {
	if p := s.failed.Load(); p != nil {
		return fmt.Errorf("filestore: %s refuses commits after a failed write (reopen to recover): %w", s.dir, *p)
	}
	return nil
}

// committer is the state of the one goroutine that writes the log. Only
// that goroutine touches it.
type committer struct {
	s       *Store
	seg     *segment // being written
	off     int64    // where the next frame goes in seg
	next    uint64   // position of the next event
	last    int64    // last commit time, Unix nanoseconds
	buf     []byte   // the group's frames
	batch   *pebble.Batch
	ix      indexer
	reader  *logReader
	streams map[string]streamMeta // bounded cache of stream metas
	overlay map[string]streamMeta // metas changed by the group
	prev    map[string]streamMeta // metas changed by the group in flight (being synced)
	ids     map[[16]byte]driver.Record
	req     *request // being prepared

	// recent holds the IDs of every event committed above floor, for
	// requests whose pre-lookup is older than the group (bounded: FIFO).
	recent map[[16]byte]driver.Record
	ring   [][16]byte
	ringAt int
	floor  uint64
}

const recentIDs = 1 << 16

func newCommitter(s *Store, rec recovered) *committer {
	return &committer{s: s, seg: rec.seg, off: rec.off, next: rec.head + 1, last: rec.last,
		streams: make(map[string]streamMeta), overlay: make(map[string]streamMeta),
		prev: make(map[string]streamMeta),
		ids:  make(map[[16]byte]driver.Record), recent: make(map[[16]byte]driver.Record),
		ring: make([][16]byte, 0, recentIDs), floor: rec.head}
}

// remember adds the group's IDs to recent, evicting the oldest.
func (w *committer) remember() {
	for id, r := range w.ids {
		if len(w.ring) < cap(w.ring) {
			w.ring = append(w.ring, id)
		} else {
			old := w.ring[w.ringAt]
			if o, ok := w.recent[old]; ok {
				w.floor = max(w.floor, o.Position)
				delete(w.recent, old)
			}
			w.ring[w.ringAt] = id
			w.ringAt = (w.ringAt + 1) % len(w.ring)
		}
		w.recent[id] = r
	}
}

// run is the committer goroutine: it takes whatever requests are queued,
// up to the group bounds, checks and encodes them, writes them with one
// write and hands the group to the syncer. While the syncer waits for one
// group's fdatasync, the committer prepares and writes the next: at most
// one group is in flight.
func (s *Store) run() {
	defer close(s.done)
	syncs := make(chan *group) // unbuffered: the committer is at most one group ahead
	synced := make(chan struct{})
	go s.syncer(syncs, synced)
	defer func() { close(syncs); <-synced }()
	w := s.w
	var pending []*request
	for {
		if len(pending) == 0 {
			r, ok := <-s.reqs
			if !ok {
				return
			}
			pending = append(pending, r)
		}
		events, size := 0, 0
		for _, r := range pending {
			events, size = events+r.n, size+r.size
		}
	drain:
		for events < s.opts.MaxGroupEvents && size < s.opts.MaxGroupBytes {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				pending = append(pending, r)
				events, size = events+r.n, size+r.size
			default:
				break drain
			}
		}
		g := w.commitGroup(pending)
		syncs <- g
		pending = append(pending[:0], pending[len(g.reqs):]...)
	}
}

// group is a group commit written to the log but not yet synced.
type group struct {
	reqs  []*request
	seg   *segment      // nil when nothing was written
	batch *pebble.Batch // the group's index entries
	head  uint64        // position of the group's last event
}

// syncer is the goroutine that makes groups durable, in order: one
// fdatasync, then the index batch, then the head advances and the group's
// requests are answered. Requests are answered only after every earlier
// group is durable, so a duplicate or a conflict is never reported on the
// strength of data that might still be lost.
func (s *Store) syncer(syncs <-chan *group, synced chan<- struct{}) {
	defer close(synced)
	for g := range syncs {
		if err := s.syncGroup(g); err != nil {
			s.fail(err)
			for _, r := range g.reqs {
				if r.err == nil {
					r.res, r.err = driver.Committed{}, s.failure()
				}
			}
		}
		g.batch.Close()
		for _, r := range g.reqs {
			close(r.done)
		}
	}
}

func (s *Store) syncGroup(g *group) error {
	if err := s.failure(); err != nil {
		return err
	}
	if g.seg == nil {
		return nil
	}
	if !s.opts.NoSync {
		if err := unix.Fdatasync(int(g.seg.f.Fd())); err != nil {
			return fmt.Errorf("fdatasync %s: %w", g.seg.path, err)
		}
	}
	if err := g.batch.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("index (the log is durable; reopen rebuilds the index): %w", err)
	}
	s.head.Advance(g.head)
	return nil
}

// commitGroup checks and encodes a prefix of reqs as one group and writes
// it; the group ends early when the segment is full.
func (w *committer) commitGroup(reqs []*request) *group {
	now := time.Now().UnixNano()
	if now < w.last {
		now = w.last
	}
	w.buf = w.buf[:0]
	w.batch = w.s.db.NewBatch()
	w.prev, w.overlay = w.overlay, w.prev
	clear(w.overlay)
	clear(w.ids)
	first := w.next
	w.reader = newLogReader(w.s.segments(), 0)
	taken := 0
	for _, r := range reqs {
		if int64(len(w.buf)+r.size) > w.seg.size-w.off {
			if len(w.buf) > 0 {
				break
			}
			if err := w.roll(r.size); err != nil {
				w.s.fail(err)
			}
		}
		taken++
		if err := w.s.failure(); err != nil {
			r.err = err
			continue
		}
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		w.req = r
		r.res, r.err = w.prepare(r.batch, now)
	}
	g := &group{reqs: slices.Clone(reqs[:taken]), batch: w.batch, head: w.next - 1}
	w.batch = nil
	if len(w.buf) > 0 {
		g.seg = w.seg
		if err := w.write(g.batch, first, now); err != nil {
			w.s.fail(err)
		}
	}
	return g
}

// prepare checks one batch and encodes its frames into the group.
func (w *committer) prepare(b *driver.Batch, now int64) (driver.Committed, error) {
	c, dup, err := driver.MatchDuplicate(b, w.lookup)
	if err != nil || dup {
		return c, err
	}
	metas := make([]streamMeta, len(b.Appends))
	for i := range b.Appends {
		a := &b.Appends[i]
		m, err := w.meta(a.Stream)
		if err != nil {
			return driver.Committed{}, err
		}
		if !a.Expected.Check(m.version) {
			return driver.Committed{}, &driver.ConflictError{Index: i, Actual: m.version}
		}
		metas[i] = m
	}
	c.Streams = make([]driver.StreamCommitted, len(b.Appends))
	for i := range b.Appends {
		a := &b.Appends[i]
		m := metas[i]
		for j := range a.Events {
			e := &a.Events[j]
			m.version++
			var flags byte
			if i == len(b.Appends)-1 && j == len(a.Events)-1 {
				flags = flagCommitEnd
			}
			at := loc{seg: w.seg.base, off: uint32(w.off + int64(len(w.buf)))}
			if w.next%posEvery == 0 {
				if err := w.ix.pos(w.batch, w.next, at); err != nil {
					return driver.Committed{}, err
				}
			}
			w.buf = appendFrame(w.buf, flags, w.next, now, a.Stream, m.version, e)
			if err := w.ix.event(w.batch, a.Stream, e.Type, e.ID, m.version, w.next, at); err != nil {
				return driver.Committed{}, err
			}
			w.ids[e.ID] = driver.Record{Stream: a.Stream, Version: m.version, Position: w.next}
			m.last = w.next
			w.next++
		}
		if m.created == 0 {
			m.created = now
		}
		m.updated = now
		w.overlay[a.Stream] = m
		c.Streams[i] = driver.StreamCommitted{Version: m.version, Position: m.last}
	}
	return c, nil
}

// lookup finds a committed event by ID: earlier in the group, then in the
// event-ID index.
func (w *committer) lookup(id [16]byte) (driver.Record, bool, error) {
	if r, ok := w.ids[id]; ok {
		return r, true, nil
	}
	if r, ok := w.recent[id]; ok {
		return r, true, nil
	}
	if w.req.seen >= w.floor {
		// Everything committed after the pre-lookup is in recent.
		r, ok := w.req.pre[id]
		return r, ok, nil
	}
	var l loc
	ok, err := get(w.s.db, idKey(w.ix.key[:0], id), func(v []byte) (err error) {
		l, err = parseLoc(v)
		return err
	})
	if err != nil || !ok {
		return driver.Record{}, false, err
	}
	r, err := w.reader.record(l)
	return r, err == nil, err
}

// meta returns a stream's meta as of the group so far.
func (w *committer) meta(stream string) (streamMeta, error) {
	if m, ok := w.overlay[stream]; ok {
		return m, nil
	}
	if m, ok := w.prev[stream]; ok {
		return m, nil // in the group being synced: not in the index yet
	}
	if m, ok := w.streams[stream]; ok {
		return m, nil
	}
	var m streamMeta
	_, err := get(w.s.db, metaKey(w.ix.key[:0], stream), func(v []byte) (err error) {
		m, err = parseMeta(v)
		return err
	})
	return m, err
}

// write writes the group's frames (to the page cache; the syncer makes
// them durable), adds the group's stream metas, sparse position and
// indexed-through mark to its index batch, and books the group as
// committed: the committer checks later groups against it. If the group is
// then lost, the store fails and refuses every later commit.
func (w *committer) write(batch *pebble.Batch, first uint64, now int64) error {
	if _, err := w.seg.f.WriteAt(w.buf, w.off); err != nil {
		return fmt.Errorf("write %s: %w", w.seg.path, err)
	}
	start := loc{seg: w.seg.base, off: uint32(w.off)}
	w.off += int64(len(w.buf))
	w.last = now
	for stream, m := range w.overlay {
		if err := w.ix.meta(batch, stream, m); err != nil {
			return err
		}
	}
	if err := w.ix.pos(batch, first, start); err != nil {
		return err
	}
	if err := w.ix.head(batch, indexHead{pos: w.next - 1, next: loc{seg: w.seg.base, off: uint32(w.off)}}); err != nil {
		return err
	}
	w.cache()
	w.remember()
	return nil
}

// cache keeps the group's stream metas, bounded by StreamCacheEntries.
func (w *committer) cache() {
	for stream, m := range w.overlay {
		w.streams[stream] = m
	}
	for stream := range w.streams {
		if len(w.streams) <= w.s.opts.StreamCacheEntries {
			break
		}
		delete(w.streams, stream)
	}
}

// roll makes room for a commit of up to size bytes at the start of a
// segment: a new segment, or a bigger one in place of an empty one.
func (w *committer) roll(size int) error {
	s := w.s
	want := max(s.opts.SegmentSize, int64(size))
	old := w.seg
	if w.off == 0 {
		// Nothing was written to the current segment: replace it by a
		// bigger one of the same name.
		if err := os.Remove(old.path); err != nil {
			return fmt.Errorf("replace segment: %w", err)
		}
	}
	seg, err := createSegment(s.logDir, w.next, want)
	if err != nil {
		return err
	}
	s.segs.Lock()
	if w.off == 0 {
		s.segs.list[len(s.segs.list)-1] = seg
	} else {
		s.segs.list = append(s.segs.list, seg)
	}
	s.segs.Unlock()
	if w.off == 0 {
		old.f.Close()
	}
	w.seg, w.off = seg, 0
	w.reader = newLogReader(s.segments(), 0)
	return nil
}

// fail puts the store into the failed state: no further commit is accepted.
func (s *Store) fail(err error) {
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("filestore: commit path failed; commits are refused until reopen", "dir", s.dir, "err", err)
	}
}
