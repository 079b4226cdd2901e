package filestore

import (
	"fmt"
	"log/slog"
)

// Options configure a Store. The zero value works.
type Options struct {
	// SegmentSize is the size each log segment file is preallocated to
	// (default 64 MiB, at most 1 GiB). A commit larger than a segment gets
	// a segment of its own size.
	SegmentSize int64
	// MaxGroupEvents and MaxGroupBytes bound one group commit: the
	// committer takes queued appends into one write and one fdatasync until
	// either bound is reached (defaults 16384 events, 8 MiB). A single
	// append larger than the bounds is committed alone.
	MaxGroupEvents int
	MaxGroupBytes  int
	// CacheSize is the size in bytes of the index (Pebble) block cache
	// (default 64 MiB), beyond the room Pebble reserves in it for its
	// memtables (96 MiB).
	CacheSize int64
	// StreamCacheEntries bounds the in-memory cache of stream versions used
	// by the committer (default 1,048,576 streams; about 150 MB of heap when
	// full).
	StreamCacheEntries int
	// NoSync skips fdatasync on commit. UNSAFE: an acknowledged append may
	// be lost, and after a crash recovery may drop more than the torn
	// tail. For tests only.
	NoSync bool
	// Logger receives diagnostics (recovery, index rebuilds); nil discards
	// them.
	Logger *slog.Logger
}

const maxSegmentSize = 1 << 30

func (o Options) withDefaults() (Options, error) {
	if o.SegmentSize == 0 {
		o.SegmentSize = 64 << 20
	}
	if o.SegmentSize < 4096 || o.SegmentSize > maxSegmentSize {
		return o, fmt.Errorf("filestore: segment size %d is out of range [4096, %d]", o.SegmentSize, maxSegmentSize)
	}
	if o.MaxGroupEvents <= 0 {
		o.MaxGroupEvents = 16384
	}
	if o.MaxGroupBytes <= 0 {
		o.MaxGroupBytes = 8 << 20
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 64 << 20
	}
	if o.StreamCacheEntries <= 0 {
		o.StreamCacheEntries = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
