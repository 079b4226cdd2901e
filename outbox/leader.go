package outbox

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"github.com/fjord-data/fjord/internal/backoff"
	"hash/fnv"
	"time"

	"github.com/fjord-data/fjord/internal/sqldialect"
)

// leader is a relay's leadership: on PostgreSQL, the connection that
// holds the session advisory lock that makes it the leader, on which it
// reads and deletes; on SQLite, the lease it renews, and the pool it
// works through (a SQLite relay holds no connection of its own, so that a
// pool of one connection, which queues writers in Go instead of in
// SQLite's sleeping busy handler, works).
type leader struct {
	conn    querier
	lease   bool      // SQLite: leadership is the lease row
	renewAt time.Time // when to extend the lease
	unlock  func()    // releases the leadership and the connection
}

func (l *leader) release() { l.unlock() }

// elect returns once the relay leads, or with ctx.Err() when ctx ends
// first. Failures (an unreachable database) are logged and retried.
func (r *Relay) elect(ctx context.Context) (*leader, error) {
	for {
		var l *leader
		var err error
		if r.o.dialect == sqldialect.PostgreSQL {
			l, err = r.electPostgres(ctx)
		} else {
			l, err = r.electSQLite(ctx)
		}
		if l != nil {
			return l, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.opts.Logger.WarnContext(ctx, "outbox: relay election failed", "table", r.o.table, "err", err)
		if err := backoff.Sleep(ctx, r.opts.PollInterval); err != nil {
			return nil, err
		}
	}
}

// leaderLockKey is the PostgreSQL advisory lock key of the outbox's
// leadership: one per table, per schema, per database.
func (r *Relay) leaderLockKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("fjord/outbox-relay/" + r.o.scope + "." + r.o.table))
	return int64(h.Sum64())
}

// electPostgres waits for the outbox's session advisory lock on a
// connection of its own. PostgreSQL releases the lock when the session
// ends, so a leader that dies, or loses its connection, is replaced at
// once by a relay waiting here.
func (r *Relay) electPostgres(ctx context.Context) (*leader, error) {
	conn, err := r.o.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	key := r.leaderLockKey()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		discard(conn)
		return nil, err
	}
	unlock := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			discard(conn) // closing the session releases the lock
			return
		}
		conn.Close()
	}
	return &leader{conn: conn, unlock: unlock}, nil
}

// discard closes conn and keeps database/sql from reusing it.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// querier is what *sql.Conn and *sql.DB share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
	PingContext(ctx context.Context) error
}

// electSQLite tries to take the lease every quarter LeaseTTL until it
// gets it. The lease is a row naming its holder and its expiry; a relay
// takes it when it is free or expired, and the leader extends it in every
// transaction that removes published rows (and at least every third of
// LeaseTTL), failing when another relay took it.
func (r *Relay) electSQLite(ctx context.Context) (*leader, error) {
	db := r.o.db
	for {
		now := time.Now()
		res, err := db.ExecContext(ctx, "INSERT INTO "+r.o.leaseTable()+" (name, holder, expires) VALUES (?, ?, ?) "+
			"ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires "+
			"WHERE "+r.o.leaseTable()+".holder = excluded.holder OR "+r.o.leaseTable()+".expires < ?",
			r.o.table, r.id, now.Add(r.opts.LeaseTTL).UnixNano(), now.UnixNano())
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			l := &leader{conn: db, lease: true, renewAt: now.Add(r.opts.LeaseTTL / 3)}
			l.unlock = func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				db.ExecContext(ctx, "DELETE FROM "+r.o.leaseTable()+" WHERE name = ? AND holder = ?", r.o.table, r.id)
			}
			return l, nil
		}
		if err := backoff.Sleep(ctx, r.opts.LeaseTTL/4); err != nil {
			return nil, err
		}
	}
}

// renew extends the SQLite lease when it is due (or at once with force),
// and returns ErrNotLeader when another relay took it. On PostgreSQL it
// checks, with force, that the leader's session is alive.
func (r *Relay) renew(ctx context.Context, l *leader, force bool) error {
	if !l.lease {
		if force {
			if err := l.conn.PingContext(ctx); err != nil {
				return fmt.Errorf("%w: its session failed: %w", ErrNotLeader, err)
			}
		}
		return nil
	}
	if !force && time.Now().Before(l.renewAt) {
		return nil
	}
	if err := r.extendLease(ctx, l.conn, l); err != nil {
		return err
	}
	l.renewAt = time.Now().Add(r.opts.LeaseTTL / 3)
	return nil
}

// extendLease extends the lease through e (the leader's connection or a
// transaction on it), or returns ErrNotLeader.
func (r *Relay) extendLease(ctx context.Context, e execer, l *leader) error {
	res, err := e.ExecContext(ctx, "UPDATE "+r.o.leaseTable()+" SET expires = ? WHERE name = ? AND holder = ?",
		time.Now().Add(r.opts.LeaseTTL).UnixNano(), r.o.table, r.id)
	if err != nil {
		return fmt.Errorf("outbox: extending the relay's lease: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%w: another relay took its lease", ErrNotLeader)
	}
	return nil
}

// checkLease returns ErrNotLeader when another relay holds the lease: a
// SQLite leader whose lease expired (it was paused, or slow) and was taken
// stops before it publishes again, not only when it next renews.
func (r *Relay) checkLease(ctx context.Context, l *leader) error {
	var holder string
	err := l.conn.QueryRowContext(ctx, "SELECT holder FROM "+r.o.leaseTable()+" WHERE name = ?", r.o.table).Scan(&holder)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("outbox: reading the relay's lease: %w", err)
	}
	if holder != r.id {
		return fmt.Errorf("%w: another relay took its lease", ErrNotLeader)
	}
	return nil
}
