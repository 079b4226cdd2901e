package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// logReader reads frames through a window buffer: one pread serves many
// frames when reading sequentially or when index entries are clustered.
// It is not safe for concurrent use.
type logReader struct {
	segs  []*segment
	ahead int      // bytes to read beyond what a frame needs, at most
	cur   int      // bytes to read ahead now: grows from minReadAhead to ahead
	buf   []byte   // window: bytes of seg at [off, off+len(buf))
	seg   *segment // nil: empty window
	off   int64
}

// minReadAhead is the first read-ahead of a reader: short reads (a live
// subscription's few new events, one page) stay cheap, and long scans
// double it on every refill up to the reader's maximum.
const minReadAhead = 32 << 10

func newLogReader(segs []*segment, ahead int) *logReader {
	return &logReader{segs: segs, ahead: ahead, cur: min(ahead, minReadAhead)}
}

func (r *logReader) segment(base uint64) (*segment, error) {
	_, s := findSegment(r.segs, base)
	if s == nil {
		return nil, fmt.Errorf("%w: segment %s is missing", driver.ErrCorrupt, segmentName(base))
	}
	return s, nil
}

// next returns the segment after s, or nil.
func (r *logReader) next(s *segment) *segment {
	i, _ := findSegment(r.segs, s.base)
	if i < 0 || i+1 >= len(r.segs) {
		return nil
	}
	return r.segs[i+1]
}

// readers hands out the log readers of one read and, when it ends, gives
// their window buffers back to the store's pool, so that paged reads (a
// catch-up subscription reads 512 events at a time) make no garbage for
// their windows.
type readers struct {
	pool *sync.Pool // of *[]byte
	list []*logReader
}

func (rs *readers) new(segs []*segment, ahead int) *logReader {
	r := newLogReader(segs, ahead)
	if p, ok := rs.pool.Get().(*[]byte); ok {
		r.buf = (*p)[:0]
	}
	rs.list = append(rs.list, r)
	return r
}

func (rs *readers) release() {
	for _, r := range rs.list {
		if cap(r.buf) > 0 && cap(r.buf) <= 2*seqReadAhead {
			b := r.buf[:0]
			rs.pool.Put(&b)
		}
		r.buf, r.seg = nil, nil
	}
	rs.list = nil
}

// window returns at least n bytes of seg from off (fewer at the end of the
// file), reading when the window does not hold them.
func (r *logReader) window(seg *segment, off int64, n int) ([]byte, error) {
	if r.seg == seg && off >= r.off && off+int64(n) <= r.off+int64(len(r.buf)) {
		return r.buf[off-r.off:], nil
	}
	want := n + r.cur
	r.cur = min(2*r.cur, r.ahead)
	if rem := seg.size - off; int64(want) > rem {
		want = int(max(rem, 0))
	}
	if cap(r.buf) < want {
		r.buf = make([]byte, max(want, min(2*cap(r.buf), r.ahead+64<<10)))
	}
	r.buf = r.buf[:want]
	got, err := seg.f.ReadAt(r.buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		r.seg = nil
		return nil, fmt.Errorf("filestore: read %s at %d: %w", seg.path, off, err)
	}
	r.buf, r.seg, r.off = r.buf[:got], seg, off
	return r.buf, nil
}

// frame returns the payload of the frame at off in seg, nil at the end of
// data, or a *driver.CorruptionError. The payload aliases the window and
// is valid until the next call.
func (r *logReader) frame(seg *segment, off int64) ([]byte, error) {
	b, err := r.window(seg, off, frameHeader)
	if err != nil {
		return nil, err
	}
	if len(b) >= frameHeader {
		if n := binary.BigEndian.Uint32(b); n != 0 && int(n) <= maxFramePayload && len(b) < frameHeader+int(n) {
			if b, err = r.window(seg, off, frameHeader+int(n)); err != nil {
				return nil, err
			}
		}
	} else if len(b) == 0 {
		return nil, nil // end of the file
	}
	p, err := checkFrame(b)
	if err != nil {
		if errors.Is(err, errShort) {
			err = frameError("frame extends beyond the end of the file")
		}
		return nil, &driver.CorruptionError{File: seg.path, Offset: off, Reason: err.Error()}
	}
	return p, nil
}

// cursor walks frames forwards from a location.
type cursor struct {
	r   *logReader
	seg *segment
	off int64
}

// next returns the next frame's payload and location; ok is false at the
// end of the log.
func (c *cursor) next() (p []byte, at loc, ok bool, err error) {
	for {
		p, err := c.r.frame(c.seg, c.off)
		if err != nil {
			return nil, loc{}, false, err
		}
		if p == nil {
			nx := c.r.next(c.seg)
			if nx == nil {
				return nil, loc{}, false, nil
			}
			c.seg, c.off = nx, 0
			continue
		}
		at = loc{seg: c.seg.base, off: uint32(c.off)}
		c.off += int64(frameHeader + len(p))
		return p, at, true, nil
	}
}

// record reads and decodes the record at l.
func (r *logReader) record(l loc) (driver.Record, error) {
	seg, err := r.segment(l.seg)
	if err != nil {
		return driver.Record{}, err
	}
	p, err := r.frame(seg, int64(l.off))
	if err != nil {
		return driver.Record{}, err
	}
	if p == nil {
		return driver.Record{}, &driver.CorruptionError{File: seg.path, Offset: int64(l.off), Reason: "index points past the end of data"}
	}
	h, err := parseHead(p)
	if err != nil {
		return driver.Record{}, &driver.CorruptionError{File: seg.path, Offset: int64(l.off), Reason: err.Error()}
	}
	rec, err := decodeRecord(p, &h)
	if err != nil {
		return driver.Record{}, &driver.CorruptionError{File: seg.path, Offset: int64(l.off), Reason: err.Error()}
	}
	return rec, nil
}
