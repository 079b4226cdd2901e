package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// Index keys. Numbers are big-endian so that keys sort by them; names are
// followed by a 0x00 separator (core validation forbids control characters
// in stream names and event types).
//
//	's' stream 0x00 version  → loc    stream index
//	'm' stream               → meta   stream version, last position, created, updated
//	'i' id                   → loc    event-ID index
//	'c' category 0x00 pos    → loc    category index
//	't' type 0x00 pos        → loc    event-type index
//	'p' pos                  → loc    sparse position index (first frame of a commit group)
//	'h'                      → pos loc  indexed through pos; loc is the frame after it
const (
	kStream = 's'
	kMeta   = 'm'
	kID     = 'i'
	kCat    = 'c'
	kType   = 't'
	kPos    = 'p'
	kHead   = 'h'
)

// loc is where a frame starts: a segment (by base) and an offset in it.
type loc struct {
	seg uint64
	off uint32
}

const locLen = 12

func appendLoc(b []byte, l loc) []byte {
	b = binary.BigEndian.AppendUint64(b, l.seg)
	return binary.BigEndian.AppendUint32(b, l.off)
}

func parseLoc(b []byte) (loc, error) {
	if len(b) < locLen {
		return loc{}, fmt.Errorf("%w: index value of %d bytes", driver.ErrCorrupt, len(b))
	}
	return loc{seg: binary.BigEndian.Uint64(b), off: binary.BigEndian.Uint32(b[8:])}, nil
}

// nameKey is prefix name 0x00 n.
func nameKey(b []byte, prefix byte, name string, n uint64) []byte {
	b = append(b, prefix)
	b = append(b, name...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, n)
}

// nameBounds are the bounds of every nameKey(prefix, name, n) with lo <= n <= hi.
func nameBounds(prefix byte, name string, lo, hi uint64) (lower, upper []byte) {
	lower = nameKey(nil, prefix, name, lo)
	if hi == ^uint64(0) {
		upper = append(append([]byte{prefix}, name...), 1)
	} else {
		upper = nameKey(nil, prefix, name, hi+1)
	}
	return lower, upper
}

func metaKey(b []byte, stream string) []byte { return append(append(b, kMeta), stream...) }
func idKey(b []byte, id [16]byte) []byte     { return append(append(b, kID), id[:]...) }
func posKey(b []byte, pos uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, kPos), pos)
}

var headKey = []byte{kHead}

// keyNum returns the number at the end of a key.
func keyNum(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(k)-8:]) }

// streamMeta is a stream's entry in the stream meta index.
type streamMeta struct {
	version, last    uint64 // version and position of the last event
	created, updated int64  // Unix nanoseconds
}

func (m streamMeta) append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, m.version)
	b = binary.BigEndian.AppendUint64(b, m.last)
	b = binary.BigEndian.AppendUint64(b, uint64(m.created))
	return binary.BigEndian.AppendUint64(b, uint64(m.updated))
}

func parseMeta(b []byte) (streamMeta, error) {
	if len(b) != 32 {
		return streamMeta{}, fmt.Errorf("%w: stream meta of %d bytes", driver.ErrCorrupt, len(b))
	}
	return streamMeta{version: binary.BigEndian.Uint64(b), last: binary.BigEndian.Uint64(b[8:]),
		created: int64(binary.BigEndian.Uint64(b[16:])), updated: int64(binary.BigEndian.Uint64(b[24:]))}, nil
}

// indexHead is the "indexed through" mark.
type indexHead struct {
	pos  uint64 // last indexed position (0: none)
	next loc    // where the frame after pos starts
}

func parseIndexHead(b []byte) (indexHead, error) {
	if len(b) != 8+locLen {
		return indexHead{}, fmt.Errorf("%w: index head of %d bytes", driver.ErrCorrupt, len(b))
	}
	l, _ := parseLoc(b[8:])
	return indexHead{pos: binary.BigEndian.Uint64(b), next: l}, nil
}

// indexer adds index entries to a batch, reusing one key buffer.
type indexer struct {
	key, val []byte
}

func (x *indexer) event(b *pebble.Batch, stream, typ string, id [16]byte, version, pos uint64, l loc) error {
	x.val = appendLoc(x.val[:0], l)
	x.key = nameKey(x.key[:0], kStream, stream, version)
	if err := b.Set(x.key, x.val, nil); err != nil {
		return err
	}
	x.key = idKey(x.key[:0], id)
	if err := b.Set(x.key, x.val, nil); err != nil {
		return err
	}
	x.key = nameKey(x.key[:0], kCat, driver.Category(stream), pos)
	if err := b.Set(x.key, x.val, nil); err != nil {
		return err
	}
	x.key = nameKey(x.key[:0], kType, typ, pos)
	return b.Set(x.key, x.val, nil)
}

func (x *indexer) meta(b *pebble.Batch, stream string, m streamMeta) error {
	x.key = metaKey(x.key[:0], stream)
	x.val = m.append(x.val[:0])
	return b.Set(x.key, x.val, nil)
}

// posEvery: besides the first position of every group commit, the sparse
// position index has every posEvery-th position, so a read from any
// position skips at most that many frames.
const posEvery = 128

func (x *indexer) pos(b *pebble.Batch, pos uint64, l loc) error {
	x.key = posKey(x.key[:0], pos)
	x.val = appendLoc(x.val[:0], l)
	return b.Set(x.key, x.val, nil)
}

func (x *indexer) head(b *pebble.Batch, h indexHead) error {
	x.val = binary.BigEndian.AppendUint64(x.val[:0], h.pos)
	x.val = appendLoc(x.val, h.next)
	return b.Set(headKey, x.val, nil)
}

// get reads one key; ok is false when it is absent. fn sees the value only
// during the call.
func get(db *pebble.DB, key []byte, fn func([]byte) error) (ok bool, err error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	return true, fn(v)
}

const memTableSize = 32 << 20

func openIndex(dir string, cache int64, log *slog.Logger) (*pebble.DB, error) {
	// Pebble reserves room for its memtables in the block cache: without
	// this headroom, the memtables would take the whole cache and every
	// filter block would be read from disk on every lookup.
	c := pebble.NewCache(cache + 3*memTableSize)
	defer c.Unref()
	opts := &pebble.Options{
		Cache:  c,
		Logger: pebbleLogger{log},
		// The index is derived from the log and rebuilt from its tail on
		// Open, so it needs no write-ahead log: only flushed memtables
		// persist, each a prefix of the batches, and each batch carries
		// its "indexed through" mark.
		DisableWAL:   true,
		MemTableSize: memTableSize,
	}
	// Event-ID lookups of new IDs miss: bloom filters answer them.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("filestore: open index %s: %w", dir, err)
	}
	return db, nil
}

// pebbleLogger sends Pebble's messages to slog instead of stderr.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble")
	panic("filestore: pebble: " + msg)
}
