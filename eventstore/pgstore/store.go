package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/internal/headwatch"
)

// Options configure a Store. The zero value works.
type Options struct {
	// Schema holds the store's tables (default "fjord"): 1 to 48
	// lower-case letters, digits or underscores. Open creates and
	// migrates it. Stores on one database that share a schema share the
	// event log; each is one node.
	Schema string
	// PollInterval bounds how long a subscription waits for a commit of
	// another node when a notification is lost, for example behind a
	// connection pooler that does not forward LISTEN/NOTIFY (default
	// 250ms).
	PollInterval time.Duration
	// MaxGroupEvents is the most events the committer writes in one
	// transaction (default 10,000). A single append larger than this is
	// written alone.
	MaxGroupEvents int
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Schema == "" {
		out.Schema = "fjord"
	}
	if out.PollInterval <= 0 {
		out.PollInterval = 250 * time.Millisecond
	}
	if out.MaxGroupEvents <= 0 {
		out.MaxGroupEvents = 10_000
	}
	return out
}

// Store is an event store backend on PostgreSQL. It is safe for concurrent
// use. It implements driver.Backend and driver.Watcher.
type Store struct {
	pool *pgxpool.Pool
	opts Options
	sql  statements
	key  int64 // advisory lock key of the commit path
	// slotKeys are advisory lock keys of this Store alone, which its
	// concurrent commit transactions hold to commit in order: each of the
	// (at most maxInFlight-1) transactions in progress holds one and waits
	// for another, so a new one needs a third.
	slotKeys [2*maxInFlight - 1]int64
	notify   string // notification channel

	queue   chan *request // Commit → committer
	stop    chan struct{} // closed by Close: the committer drains and ends
	stopped chan struct{} // closed when the committer has ended
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the committer and the listener
	closed  atomic.Bool
	once    sync.Once

	head   headwatch.Head
	headMu sync.Mutex // serializes advance, so the head never moves back

	// testHooks, set by tests only (export_test.go).
	beforeCommit func(ctx context.Context, conn *pgx.Conn) error
}

var (
	_ driver.Backend = (*Store)(nil)
	_ driver.Watcher = (*Store)(nil)
)

// Open opens the store in opts.Schema on pool's database, creating or
// migrating the schema first (see MigrationSQL). It opens one more
// connection of its own, outside the pool, to listen for commits. The pool
// stays the caller's: Close does not close it, and it must outlive the
// Store.
//
// Errors: a *VersionError when the schema is newer than this build
// supports; a wrapped ErrReadOnly when the schema must be migrated but the
// database accepts no writes; "unreachable" when no connection can be made.
func Open(ctx context.Context, pool *pgxpool.Pool, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	if err := validSchema(o.Schema); err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: connecting to PostgreSQL: %w", describe(err))
	}
	if err := migrate(ctx, pool, o.Schema); err != nil {
		return nil, err
	}
	s := &Store{
		pool: pool, opts: o, sql: newStatements(quote(o.Schema)),
		key: lockKey(o.Schema, "commit"), notify: "fjord_" + o.Schema,
		queue: make(chan *request, 4096), stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	for i := range s.slotKeys {
		s.slotKeys[i] = randomKey()
	}
	h, err := s.readHead(ctx, pool)
	if err != nil {
		return nil, err
	}
	s.advance(h)
	conn, err := s.listenConn(ctx)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go s.commitLoop(bg)
	go s.listen(bg, conn)
	return s, nil
}

// Schema returns the schema the store lives in.
func (s *Store) Schema() string { return s.opts.Schema }

// Close implements driver.Backend: it waits for the commit in progress,
// fails appends still queued with ErrClosed, stops listening and wakes
// waiters with ErrClosed. It does not close the pool. It is safe to call
// more than once.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.stopped
		s.cancel()
		s.wg.Wait()
		s.head.Close(driver.ErrClosed)
	})
	return nil
}

// Head implements driver.Backend. It asks the database, so it includes the
// commits of every node.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if s.closed.Load() {
		return 0, driver.ErrClosed
	}
	h, err := s.readHead(ctx, s.pool)
	if err != nil {
		return 0, err
	}
	s.advance(h)
	return h, nil
}

func (s *Store) readHead(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (uint64, error) {
	var h int64
	if err := q.QueryRow(ctx, s.sql.head).Scan(&h); err != nil {
		return 0, fmt.Errorf("pgstore: reading the head: %w", describe(err))
	}
	return uint64(h), nil
}

// advance moves the local head forward to h, never back.
func (s *Store) advance(h uint64) {
	s.headMu.Lock()
	defer s.headMu.Unlock()
	if h > s.head.Load() {
		s.head.Advance(h)
	}
}

// WaitHead implements driver.Watcher. It is woken by notifications of
// commits on any node; when none comes it asks the database every
// PollInterval, so a lost notification only adds delay.
func (s *Store) WaitHead(ctx context.Context, after uint64) (uint64, error) {
	for {
		wctx, cancel := context.WithTimeout(ctx, s.opts.PollInterval)
		h, err := s.head.Wait(wctx, after)
		cancel()
		switch {
		case err == nil:
			return h, nil
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded):
			return 0, err // closed
		}
		if h, err = s.Head(ctx); err != nil {
			return 0, err
		}
		if h > after {
			return h, nil
		}
	}
}

// StreamInfo implements driver.Backend.
func (s *Store) StreamInfo(ctx context.Context, stream string) (driver.StreamInfo, error) {
	if s.closed.Load() {
		return driver.StreamInfo{}, driver.ErrClosed
	}
	var version, position int64
	var created, updated time.Time
	err := s.pool.QueryRow(ctx, s.sql.streamInfo, stream).Scan(&version, &position, &created, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return driver.StreamInfo{}, driver.ErrStreamNotFound
	}
	if err != nil {
		return driver.StreamInfo{}, fmt.Errorf("pgstore: reading stream %q: %w", stream, describe(err))
	}
	return driver.StreamInfo{Version: uint64(version), Position: uint64(position), Created: created.UTC(), Updated: updated.UTC()}, nil
}

// randomKey returns a random advisory lock key, never 0.
func randomKey() int64 {
	var b [8]byte
	rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:]) | 1)
}
