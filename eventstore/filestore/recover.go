package filestore

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"golang.org/x/sys/unix"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// recovered is the state of the log after recovery.
type recovered struct {
	head uint64   // last position of the last complete commit
	last int64    // its commit time
	seg  *segment // the segment to write next
	off  int64    // where in seg
}

// pendingFrame is a frame of a commit whose last frame is not yet seen.
type pendingFrame struct {
	at            loc
	pos, version  uint64
	time          int64
	stream, typ   string
	id            [16]byte
	commitEnd     bool
	segOff, frEnd int64
}

// recover scans the log from the index's "indexed through" mark to its end,
// indexes what the index lacks, and truncates a torn tail.
func (s *Store) recover() (recovered, error) {
	h, ok, err := s.indexHead()
	if err != nil {
		return recovered{}, err
	}
	segs := s.segs.list
	if ok {
		if _, seg := findSegment(segs, h.next.seg); seg == nil {
			s.log.Warn("filestore: index refers to a missing segment; rebuilding it", "dir", s.dir)
			if err := s.resetIndex(); err != nil {
				return recovered{}, err
			}
			ok, h = false, indexHead{}
		}
	}
	if len(segs) == 0 {
		if ok && h.pos > 0 {
			if err := s.resetIndex(); err != nil {
				return recovered{}, err
			}
		}
		seg, err := createSegment(s.logDir, 1, s.opts.SegmentSize)
		if err != nil {
			return recovered{}, err
		}
		s.segs.list = []*segment{seg}
		return recovered{seg: seg}, nil
	}
	start := loc{seg: segs[0].base}
	if ok {
		start = h.next
	}
	rec, err := s.scan(start, h.pos)
	if err != nil {
		return recovered{}, err
	}
	if rec.head < h.pos {
		// The index is ahead of the log (possible only with NoSync).
		s.log.Warn("filestore: index is ahead of the log; rebuilding it", "dir", s.dir, "indexed", h.pos, "log", rec.head)
		if err := s.resetIndex(); err != nil {
			return recovered{}, err
		}
		return s.scan(loc{seg: segs[0].base}, 0)
	}
	return rec, nil
}

func (s *Store) indexHead() (indexHead, bool, error) {
	var h indexHead
	ok, err := get(s.db, headKey, func(v []byte) (err error) {
		h, err = parseIndexHead(v)
		return err
	})
	if err != nil {
		return h, false, fmt.Errorf("filestore: read index head: %w", err)
	}
	return h, ok, nil
}

func (s *Store) resetIndex() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("filestore: close index: %w", err)
	}
	s.db = nil
	dir := filepath.Join(s.dir, "index")
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("filestore: remove index: %w", err)
	}
	db, err := openIndex(dir, s.opts.CacheSize, s.log)
	s.db = db
	return err
}

// rebuilder indexes complete commits found by the scan.
type rebuilder struct {
	s       *Store
	batch   *pebble.Batch
	ix      indexer
	metas   map[string]streamMeta
	events  int
	lastPos uint64 // position of the last 'p' entry
	lastSeg uint64
}

func (b *rebuilder) commit(frames []pendingFrame, next loc) error {
	if b.batch == nil {
		b.batch = b.s.db.NewBatch()
	}
	first := frames[0]
	if first.at.seg != b.lastSeg || first.pos-b.lastPos >= 256 || b.lastPos == 0 {
		if err := b.ix.pos(b.batch, first.pos, first.at); err != nil {
			return err
		}
		b.lastPos, b.lastSeg = first.pos, first.at.seg
	}
	for _, f := range frames {
		if err := b.ix.event(b.batch, f.stream, f.typ, f.id, f.version, f.pos, f.at); err != nil {
			return err
		}
		if f.pos%posEvery == 0 {
			if err := b.ix.pos(b.batch, f.pos, f.at); err != nil {
				return err
			}
		}
		m, ok := b.metas[f.stream]
		if !ok {
			var err error
			if _, err = get(b.s.db, metaKey(nil, f.stream), func(v []byte) (err error) {
				m, err = parseMeta(v)
				return err
			}); err != nil {
				return err
			}
		}
		if m.version+1 != f.version {
			return fmt.Errorf("%w: event %d of stream %q has version %d after %d", driver.ErrCorrupt, f.pos, f.stream, f.version, m.version)
		}
		if m.created == 0 {
			m.created = f.time
		}
		m.version, m.last, m.updated = f.version, f.pos, f.time
		b.metas[f.stream] = m
	}
	b.events += len(frames)
	if err := b.ix.head(b.batch, indexHead{pos: frames[len(frames)-1].pos, next: next}); err != nil {
		return err
	}
	if b.events >= 65536 {
		return b.flush()
	}
	return nil
}

func (b *rebuilder) flush() error {
	if b.batch == nil {
		return nil
	}
	for stream, m := range b.metas {
		if err := b.ix.meta(b.batch, stream, m); err != nil {
			return err
		}
	}
	err := b.batch.Commit(pebble.NoSync)
	b.batch.Close()
	b.batch, b.events = nil, 0
	clear(b.metas)
	if err != nil {
		return fmt.Errorf("filestore: rebuild index: %w", err)
	}
	return nil
}

// scan walks the log from start, where position indexed+1 is expected.
func (s *Store) scan(start loc, indexed uint64) (recovered, error) {
	segs := s.segs.list
	r := newLogReader(segs, 1<<20)
	b := &rebuilder{s: s, metas: make(map[string]streamMeta)}
	defer func() {
		if b.batch != nil {
			b.batch.Close()
		}
	}()
	_, seg := findSegment(segs, start.seg)
	off := int64(start.off)
	rec := recovered{head: indexed}
	var pending []pendingFrame
	expect := indexed + 1
	if indexed == 0 {
		expect = 0 // the first frame's position, whatever it is
	}
	var cutSeg *segment // where the data of the last complete commit ends
	cutOff := off
	cutSeg = seg
	for seg != nil {
		p, err := r.frame(seg, off)
		if err != nil {
			if torn, end := s.tornAt(r, seg, off); torn {
				return s.truncate(b, rec, pending, cutSeg, cutOff, seg, end)
			}
			return recovered{}, err
		}
		if p == nil { // end of data in this segment
			if nx := r.next(seg); nx != nil {
				if len(pending) > 0 && !s.emptyFrom(r, nx) {
					return recovered{}, &driver.CorruptionError{File: seg.path, Offset: off, Reason: "a commit ends without its last frame"}
				}
				if len(pending) > 0 {
					return s.truncate(b, rec, pending, cutSeg, cutOff, seg, off)
				}
				seg, off = nx, 0
				cutSeg, cutOff = seg, 0
				continue
			}
			if len(pending) > 0 {
				return s.truncate(b, rec, pending, cutSeg, cutOff, seg, off)
			}
			break
		}
		h, err := parseHead(p)
		if err == nil && expect != 0 && h.position != expect {
			err = fmt.Errorf("position %d where %d was expected", h.position, expect)
		}
		if err != nil {
			return recovered{}, &driver.CorruptionError{File: seg.path, Offset: off, Reason: err.Error()}
		}
		expect = h.position + 1
		at := loc{seg: seg.base, off: uint32(off)}
		off += int64(frameHeader + len(p))
		pending = append(pending, pendingFrame{at: at, pos: h.position, version: h.version, time: h.time,
			stream: string(h.stream), typ: string(h.typ), id: h.id})
		if h.flags&flagCommitEnd == 0 {
			continue
		}
		if err := b.commit(pending, loc{seg: seg.base, off: uint32(off)}); err != nil {
			return recovered{}, err
		}
		rec.head, rec.last = h.position, h.time
		pending = pending[:0]
		cutSeg, cutOff = seg, off
	}
	if err := b.flush(); err != nil {
		return recovered{}, err
	}
	return s.finish(rec, cutSeg, cutOff)
}

// tornAt reports whether a bad frame at off in seg is a torn tail: nothing
// but zeros follows it in seg, and every later segment is empty. end is
// where the bad frame's bytes end.
func (s *Store) tornAt(r *logReader, seg *segment, off int64) (bool, int64) {
	end := seg.size
	var hdr [4]byte
	if _, err := seg.f.ReadAt(hdr[:], off); err == nil {
		if n := int64(binary.BigEndian.Uint32(hdr[:])); off+frameHeader+n < end {
			end = off + frameHeader + n
		}
	}
	if !zeros(seg, end, seg.size) {
		return false, 0
	}
	if nx := r.next(seg); nx != nil && !s.emptyFrom(r, nx) {
		return false, 0
	}
	return true, end
}

// emptyFrom reports whether seg and every segment after it hold no frame.
func (s *Store) emptyFrom(r *logReader, seg *segment) bool {
	for ; seg != nil; seg = r.next(seg) {
		var hdr [frameHeader]byte
		if n, _ := seg.f.ReadAt(hdr[:], 0); n == frameHeader && binary.BigEndian.Uint32(hdr[:]) != 0 {
			return false
		}
	}
	return true
}

func zeros(seg *segment, from, to int64) bool {
	buf := make([]byte, 1<<20)
	for off := from; off < to; {
		n := min(int64(len(buf)), to-off)
		got, _ := seg.f.ReadAt(buf[:n], off)
		for _, c := range buf[:got] {
			if c != 0 {
				return false
			}
		}
		if got == 0 {
			return true
		}
		off += int64(got)
	}
	return true
}

// truncate drops everything after the last complete commit, which ends at
// cutOff in cutSeg, up to dirtyEnd in dirtySeg, and finishes recovery.
func (s *Store) truncate(b *rebuilder, rec recovered, pending []pendingFrame, cutSeg *segment, cutOff int64, dirtySeg *segment, dirtyEnd int64) (recovered, error) {
	if err := b.flush(); err != nil {
		return recovered{}, err
	}
	from := cutOff
	if cutSeg != dirtySeg {
		from = 0 // the complete commits end in an earlier segment
	}
	s.log.Warn("filestore: truncating a torn tail of the log", "file", dirtySeg.path, "offset", from,
		"bytes", dirtyEnd-from, "incomplete_events", len(pending))
	if dirtyEnd > from {
		if _, err := dirtySeg.f.WriteAt(make([]byte, dirtyEnd-from), from); err != nil {
			return recovered{}, fmt.Errorf("filestore: truncate %s: %w", dirtySeg.path, err)
		}
		if err := unix.Fdatasync(int(dirtySeg.f.Fd())); err != nil {
			return recovered{}, fmt.Errorf("filestore: truncate %s: %w", dirtySeg.path, err)
		}
	}
	return s.finish(rec, cutSeg, cutOff)
}

// finish picks the segment to write next: the last one, after the end of
// data when the last complete commit is in it.
func (s *Store) finish(rec recovered, cutSeg *segment, cutOff int64) (recovered, error) {
	last := s.segs.list[len(s.segs.list)-1]
	rec.seg, rec.off = last, 0
	if cutSeg == last {
		rec.off = cutOff
	}
	if err := last.grow(s.opts.SegmentSize); err != nil {
		return recovered{}, err
	}
	if rec.head > 0 || rec.off > 0 {
		s.log.Info("filestore: opened", "dir", s.dir, "head", rec.head)
	}
	return rec, nil
}
