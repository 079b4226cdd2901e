package filestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"golang.org/x/sys/unix"

	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/internal/headwatch"
)

// Store is a durable event store in one directory. It is safe for
// concurrent use. Only one Store (in any process) may have a directory open.
type Store struct {
	dir    string
	logDir string
	opts   Options
	log    *slog.Logger
	lock   *os.File
	db     *pebble.DB
	head   headwatch.Head

	reqs chan *request
	done chan struct{} // closed when the committer has stopped
	w    *committer    // owned by the committer goroutine

	// Lock order: send, then life, then segs.
	send   sync.RWMutex // Commit holds it shared while handing a request over; Close exclusively
	life   sync.RWMutex // readers hold it shared while they touch files or the index; Close exclusively
	closed atomic.Bool
	failed atomic.Pointer[error] // set when a write or sync failed

	windows sync.Pool // of *[]byte: log readers' window buffers, see readers

	segs struct {
		sync.RWMutex
		list []*segment // in log order; the last is the one being written
	}
}

var (
	_ driver.Backend = (*Store)(nil)
	_ driver.Watcher = (*Store)(nil)
)

// Open opens the store in dir, creating it if needed, recovers the log
// (truncating a torn tail to the last complete commit) and brings the
// indexes up to date. opts may be nil.
//
// Open fails when another Store holds dir, and with a *driver.CorruptionError
// when the log holds corrupt data that is not a torn tail.
func Open(dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, logDir: filepath.Join(dir, "log"), opts: o, log: o.Logger}
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if s.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	if err := s.open(); err != nil {
		s.release()
		return nil, err
	}
	s.reqs = make(chan *request, 4096)
	s.done = make(chan struct{})
	go s.run()
	return s, nil
}

func (s *Store) open() error {
	segs, err := listSegments(s.logDir)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	s.segs.list = segs
	if s.db, err = openIndex(filepath.Join(s.dir, "index"), s.opts.CacheSize, s.log); err != nil {
		return err
	}
	rec, err := s.recover()
	if err != nil {
		return err
	}
	s.w = newCommitter(s, rec)
	s.head.Advance(rec.head)
	return nil
}

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("filestore: %s is already open (by this or another process)", dir)
		}
		return nil, fmt.Errorf("filestore: lock %s: %w", dir, err)
	}
	return f, nil
}

// release closes files, the index and the lock; for Open's failures and Close.
func (s *Store) release() error {
	var errs []error
	if s.db != nil {
		if err := s.db.Flush(); err != nil {
			errs = append(errs, err)
		}
		if err := s.db.Close(); err != nil {
			errs = append(errs, err)
		}
		s.db = nil
	}
	s.segs.Lock()
	closeSegments(s.segs.list)
	s.segs.list = nil
	s.segs.Unlock()
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock = nil
	}
	return errors.Join(errs...)
}

// Close stops the committer after it has committed the appends handed to
// it, wakes WaitHead callers with driver.ErrClosed, flushes the index and
// releases the directory. Reads in progress end with driver.ErrClosed.
func (s *Store) Close() error {
	s.send.Lock()
	if s.closed.Swap(true) {
		s.send.Unlock()
		return nil
	}
	close(s.reqs)
	s.send.Unlock()
	<-s.done
	s.head.Close(driver.ErrClosed)
	s.life.Lock()
	defer s.life.Unlock()
	if err := s.release(); err != nil {
		return fmt.Errorf("filestore: close %s: %w", s.dir, err)
	}
	return nil
}

// Head implements driver.Backend.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if s.closed.Load() {
		return 0, driver.ErrClosed
	}
	return s.head.Load(), nil
}

// WaitHead implements driver.Watcher.
func (s *Store) WaitHead(ctx context.Context, after uint64) (uint64, error) {
	return s.head.Wait(ctx, after)
}

// StreamInfo implements driver.Backend.
func (s *Store) StreamInfo(ctx context.Context, stream string) (driver.StreamInfo, error) {
	if err := ctx.Err(); err != nil {
		return driver.StreamInfo{}, err
	}
	if !s.enter() {
		return driver.StreamInfo{}, driver.ErrClosed
	}
	defer s.life.RUnlock()
	var m streamMeta
	ok, err := get(s.db, metaKey(nil, stream), func(v []byte) (err error) {
		m, err = parseMeta(v)
		return err
	})
	if err != nil {
		return driver.StreamInfo{}, fmt.Errorf("filestore: stream info: %w", err)
	}
	if !ok {
		return driver.StreamInfo{}, driver.ErrStreamNotFound
	}
	return driver.StreamInfo{Version: m.version, Position: m.last, Created: unixTime(m.created), Updated: unixTime(m.updated)}, nil
}

// enter takes life shared unless the store is closed; the caller must
// RUnlock it.
func (s *Store) enter() bool {
	s.life.RLock()
	if s.closed.Load() {
		s.life.RUnlock()
		return false
	}
	return true
}

func (s *Store) segments() []*segment {
	s.segs.RLock()
	defer s.segs.RUnlock()
	return s.segs.list
}
