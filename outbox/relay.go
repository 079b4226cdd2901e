package outbox

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/fjord-data/fjord/internal/backoff"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fjord-data/fjord/internal/sqldialect"
	"github.com/fjord-data/fjord/pubsub"
)

// Publisher publishes a batch of messages and returns once the broker has
// taken responsibility for all of them (*pubsub.Topic satisfies it). When
// it fails, any subset may have been published: the relay publishes the
// same batch again, and consumers deduplicate on (source, id).
type Publisher interface {
	Publish(ctx context.Context, msgs ...*pubsub.Message) error
}

// Notifier tells a relay in another process that outbox rows may have
// committed: package outbox/pgoutbox listens on PostgreSQL's notification
// channel, which Enqueue notifies on commit.
type Notifier interface {
	// Listen calls wake each time rows may have committed on channel,
	// until ctx ends (it then returns ctx.Err()) or listening fails. It
	// calls wake once as soon as it listens.
	Listen(ctx context.Context, channel string, wake func()) error
}

// RelayOptions configure a Relay. The zero value works.
type RelayOptions struct {
	// MaxBatch is how many messages one Publish call carries at most
	// (default 256).
	MaxBatch int
	// PollInterval is how often the relay looks for rows it was not woken
	// for (committed by another process, a notification lost); default 1s.
	PollInterval time.Duration
	// LeaseTTL is how long a SQLite relay's leadership outlives its last
	// renewal (default 10s): a leader that dies is replaced after at most
	// LeaseTTL and a quarter of it. PostgreSQL relays hold an advisory
	// lock instead, released when the leader's session ends.
	LeaseTTL time.Duration
	// RetryMin and RetryMax bound the jittered exponential backoff between
	// attempts to publish a batch that failed (defaults 20ms and 5s).
	RetryMin, RetryMax time.Duration
	// Notifier wakes the relay on commits of other processes (PostgreSQL:
	// pgoutbox.Notifier). Without one, they are found by the poll.
	Notifier Notifier
	// Logger receives the relay's warnings (nil: discard).
	Logger *slog.Logger
	// Hooks observe the relay.
	Hooks Hooks
}

// Hooks are optional callbacks, run on the relay's goroutine: keep them
// short.
type Hooks struct {
	// OnLeader runs when the relay becomes the leader (true) and when it
	// stops being the leader (false).
	OnLeader func(leader bool)
	// OnPublish runs after a batch was published and removed from the
	// outbox.
	OnPublish func(PublishInfo)
	// OnPublishError runs after an attempt to publish a batch failed; the
	// batch is tried again after a backoff.
	OnPublishError func(PublishError)
	// OnIdle runs when the leader found the outbox drained: every message
	// committed before its last read started is published.
	OnIdle func()
}

// PublishInfo describes a published batch.
type PublishInfo struct {
	Messages        int
	FirstSeq        int64     // the outbox sequence of the batch's first row
	LastSeq         int64     // and of its last
	OldestEnqueued  time.Time // when the batch's first row was enqueued
	PublishAttempts int
}

// PublishError describes a failed attempt to publish a batch.
type PublishError struct {
	Messages int
	Attempt  int
	Err      error
}

// ErrNotLeader is returned internally when a relay finds it lost its
// leadership (its PostgreSQL session ended, its SQLite lease was taken);
// the relay then stands for election again. Hooks.OnLeader reports it.
var ErrNotLeader = errors.New("outbox: relay is no longer the leader")

// Relay publishes the outbox's committed messages, in commit order per
// ordering key, in batches, and removes each batch after it is published.
// Any number of relays (in any number of processes) may run on one outbox:
// one of them, the leader, publishes; the others wait to take over.
type Relay struct {
	o    *Outbox
	pub  Publisher
	opts RelayOptions
	id   string // this relay's identity in the SQLite lease
}

// NewRelay returns a relay that publishes o's messages with p.
func NewRelay(o *Outbox, p Publisher, opts *RelayOptions) *Relay {
	var ro RelayOptions
	if opts != nil {
		ro = *opts
	}
	if ro.MaxBatch <= 0 {
		ro.MaxBatch = 256
	}
	if ro.PollInterval <= 0 {
		ro.PollInterval = time.Second
	}
	if ro.LeaseTTL <= 0 {
		ro.LeaseTTL = 10 * time.Second
	}
	if ro.RetryMin <= 0 {
		ro.RetryMin = 20 * time.Millisecond
	}
	if ro.RetryMax < ro.RetryMin {
		ro.RetryMax = max(5*time.Second, ro.RetryMin)
	}
	if ro.Logger == nil {
		ro.Logger = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	crand.Read(b)
	return &Relay{o: o, pub: p, opts: ro, id: hex.EncodeToString(b)}
}

// Run stands for election and, while it leads, publishes until ctx ends;
// it then returns ctx.Err(). Database and broker errors do not end Run:
// they are logged, reported to the hooks, and retried, and the messages
// wait in the outbox meanwhile.
func (r *Relay) Run(ctx context.Context) error {
	wc := r.o.wake.add()
	defer r.o.wake.remove(wc)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	if r.opts.Notifier != nil {
		wg.Go(func() { r.listen(ctx, wc) })
	}
	for {
		l, err := r.elect(ctx)
		if err != nil {
			return err
		}
		r.hookLeader(true)
		err = r.lead(ctx, l, wc)
		l.release()
		r.hookLeader(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.opts.Logger.WarnContext(ctx, "outbox: relay stepped down", "table", r.o.table, "err", err)
		if err := backoff.Sleep(ctx, r.opts.RetryMin); err != nil {
			return err
		}
	}
}

func (r *Relay) hookLeader(leader bool) {
	if r.opts.Hooks.OnLeader != nil {
		r.opts.Hooks.OnLeader(leader)
	}
}

// listen runs the Notifier until ctx ends, again after each failure.
func (r *Relay) listen(ctx context.Context, wc *wakeChan) {
	for {
		err := r.opts.Notifier.Listen(ctx, r.o.channel(), func() { wc.wake(false) })
		if ctx.Err() != nil {
			return
		}
		r.opts.Logger.WarnContext(ctx, "outbox: listening for commits failed; polling meanwhile", "table", r.o.table, "err", err)
		if backoff.Sleep(ctx, r.opts.PollInterval) != nil {
			return
		}
	}
}

// lead publishes while the relay leads: it drains the outbox, then waits
// for a wake-up, the poll or the lease's renewal, until ctx ends or the
// leadership is lost.
func (r *Relay) lead(ctx context.Context, l *leader, wc *wakeChan) error {
	for {
		if err := r.drain(ctx, l); err != nil {
			return err
		}
		wait := r.opts.PollInterval
		if l.lease {
			wait = min(wait, time.Until(l.renewAt))
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-wc.c:
			t.Stop()
			if wc.takePending() {
				r.waitWriters(ctx, l)
			}
		case <-t.C:
		}
		if err := r.renew(ctx, l, false); err != nil {
			return err
		}
	}
}

// waitWriters returns once no SQLite transaction holds the write lock:
// Enqueue woke the relay before its transaction committed, and a read now
// might not see its rows yet. On PostgreSQL, notifications come after the
// commit and there is nothing to wait for.
func (r *Relay) waitWriters(ctx context.Context, l *leader) {
	if r.o.dialect != sqldialect.SQLite {
		return
	}
	conn, err := r.o.db.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return // busy beyond the busy timeout: the poll finds the rows
	}
	// Even when ctx ended: a connection left in the transaction would
	// hold the write lock.
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
		discard(conn)
	}
}

// drain publishes batches until a read finds fewer than MaxBatch rows.
func (r *Relay) drain(ctx context.Context, l *leader) error {
	for {
		rows, err := r.read(ctx, l)
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			attempts, err := r.publish(ctx, l, rows)
			if err != nil {
				return err
			}
			if err := r.remove(ctx, l, rows); err != nil {
				return err
			}
			if r.opts.Hooks.OnPublish != nil {
				r.opts.Hooks.OnPublish(PublishInfo{Messages: len(rows), FirstSeq: rows[0].seq,
					LastSeq: rows[len(rows)-1].seq, OldestEnqueued: time.Unix(0, rows[0].enqueued), PublishAttempts: attempts})
			}
		}
		if len(rows) < r.opts.MaxBatch {
			if r.opts.Hooks.OnIdle != nil {
				r.opts.Hooks.OnIdle()
			}
			return nil
		}
	}
}

// read returns the outbox's first MaxBatch rows in sequence order. Rows
// are removed once published, so a row that commits late, behind rows
// with higher sequences already published, is read the next time: nothing
// is skipped. Per ordering key, sequence order is commit order (see the
// package doc).
func (r *Relay) read(ctx context.Context, l *leader) ([]row, error) {
	if l.lease {
		if err := r.checkLease(ctx, l); err != nil {
			return nil, err
		}
	}
	q := r.o.dialect.Rebind("SELECT " + selectColumns + " FROM " + r.o.table + " ORDER BY seq LIMIT ?")
	rs, err := l.conn.QueryContext(ctx, q, r.opts.MaxBatch)
	if err != nil {
		return nil, fmt.Errorf("outbox: reading %s: %w", r.o.table, err)
	}
	defer rs.Close()
	rows := make([]row, 0, r.opts.MaxBatch)
	for rs.Next() {
		rw, err := scanRow(rs)
		if err != nil {
			return nil, fmt.Errorf("outbox: reading %s: %w", r.o.table, err)
		}
		rows = append(rows, rw)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("outbox: reading %s: %w", r.o.table, err)
	}
	return rows, nil
}

// publish publishes the batch, again and again after failures, until it
// succeeds, ctx ends or the leadership is lost. It returns the number of
// attempts.
func (r *Relay) publish(ctx context.Context, l *leader, rows []row) (int, error) {
	msgs := make([]*pubsub.Message, len(rows))
	for i, rw := range rows {
		msgs[i] = rw.msg
	}
	for attempt := 1; ; attempt++ {
		err := r.pub.Publish(ctx, msgs...)
		if err == nil {
			return attempt, nil
		}
		if ctx.Err() != nil {
			return attempt, ctx.Err()
		}
		if r.opts.Hooks.OnPublishError != nil {
			r.opts.Hooks.OnPublishError(PublishError{Messages: len(msgs), Attempt: attempt, Err: err})
		}
		r.opts.Logger.WarnContext(ctx, "outbox: publishing failed; the batch stays in the outbox and is retried",
			"table", r.o.table, "messages", len(msgs), "attempt", attempt, "err", err)
		if err := backoff.Sleep(ctx, r.backoff(attempt)); err != nil {
			return attempt, err
		}
		if err := r.renew(ctx, l, true); err != nil {
			return attempt, err
		}
	}
}

// backoff returns the jittered delay before attempt+1.
func (r *Relay) backoff(attempt int) time.Duration {
	return backoff.Equal(r.opts.RetryMin, r.opts.RetryMax, attempt)
}

// remove deletes the published rows, by sequence: rows that committed
// meanwhile, even with lower sequences, stay. On SQLite, the same
// transaction renews the lease, and fails when another relay took it.
func (r *Relay) remove(ctx context.Context, l *leader, rows []row) error {
	var b strings.Builder
	b.WriteString("DELETE FROM " + r.o.table + " WHERE seq IN (")
	for i, rw := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(rw.seq, 10))
	}
	b.WriteByte(')')
	if !l.lease {
		if _, err := l.conn.ExecContext(ctx, b.String()); err != nil {
			return fmt.Errorf("outbox: removing %d published rows: %w", len(rows), err)
		}
		return nil
	}
	tx, err := l.conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: removing %d published rows: %w", len(rows), err)
	}
	defer tx.Rollback()
	if err := r.extendLease(ctx, tx, l); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, b.String()); err != nil {
		return fmt.Errorf("outbox: removing %d published rows: %w", len(rows), err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: removing %d published rows: %w", len(rows), err)
	}
	l.renewAt = time.Now().Add(r.opts.LeaseTTL / 3)
	return nil
}

// execer is what *sql.Conn and *sql.Tx share.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}
