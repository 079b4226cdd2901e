package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fjord-data/fjord/internal/sqldialect"
	"github.com/fjord-data/fjord/pubsub"
)

// DefaultTable is the inbox table's name when Options.Table is empty.
const DefaultTable = "fjord_inbox"

// Options configure an Inbox. The zero value works.
type Options struct {
	// Table names the inbox table (default DefaultTable): [a-z_][a-z0-9_]*,
	// at most 48 bytes, created in the connection's search path on
	// PostgreSQL.
	Table string
	// Hooks observe the inbox.
	Hooks Hooks
}

// Hooks are optional callbacks, run on the caller's goroutine.
type Hooks struct {
	// OnDuplicate runs for each message skipped because its record was
	// already there.
	OnDuplicate func(consumer string, m *pubsub.Message)
	// OnPurge runs after each purge of RunPurge, with the number of
	// records deleted or the error.
	OnPurge func(deleted int64, err error)
}

// Inbox records the messages each consumer has handled, in the consumer's
// own database, so that a message delivered again has no second effect.
// It is safe for concurrent use.
type Inbox struct {
	db      *sql.DB
	dialect sqldialect.Dialect
	table   string
	hooks   Hooks
	insert  *sql.Stmt // records a message; prepared once on db
}

// ErrInvalidOptions is matched by the errors of Open for options it cannot
// use.
var ErrInvalidOptions = errors.New("inbox: invalid options")

// Open returns the inbox of db (SQLite or PostgreSQL over database/sql),
// creating its table when it does not exist. Open does not close db.
func Open(ctx context.Context, db *sql.DB, opts *Options) (*Inbox, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if !sqldialect.ValidIdentifier(o.Table) {
		return nil, fmt.Errorf("%w: table name %q: want [a-z_][a-z0-9_]*, at most 48 bytes", ErrInvalidOptions, o.Table)
	}
	in := &Inbox{db: db, dialect: sqldialect.Of(db), table: o.Table, hooks: o.Hooks}
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS ` + in.table + ` (
	consumer TEXT NOT NULL,
	source TEXT NOT NULL,
	id TEXT NOT NULL,
	received_at BIGINT NOT NULL,
	PRIMARY KEY (consumer, source, id))`,
		`CREATE INDEX IF NOT EXISTS ` + in.table + `_received_at ON ` + in.table + ` (received_at)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("inbox: creating table %s: %w", in.table, err)
		}
	}
	var err error
	in.insert, err = db.PrepareContext(ctx, in.dialect.Rebind("INSERT INTO "+in.table+
		" (consumer, source, id, received_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"))
	if err != nil {
		return nil, fmt.Errorf("inbox: preparing statements: %w", err)
	}
	return in, nil
}

// Close releases the inbox's prepared statements. It does not close the
// database.
func (in *Inbox) Close() error { return in.insert.Close() }

// Table returns the inbox table's name.
func (in *Inbox) Table() string { return in.table }

// Handle handles m once for consumer: in one transaction it records
// (consumer, m.Source, m.ID) and, unless that record was already there,
// runs fn, then commits. It returns whether fn ran and committed. When
// the record exists (a redelivery), fn does not run and Handle returns
// false, nil. When fn or the commit fails, nothing of it is kept (fn's
// writes, the record) and the error is returned: the message can be
// handled again.
//
// fn writes the consumer's own state in tx, and must neither commit nor
// roll it back. Two deliveries of one message handled at once run fn
// once: on PostgreSQL the second insert of the record waits for the first
// transaction and then finds the record; SQLite runs one writer at a time.
func (in *Inbox) Handle(ctx context.Context, consumer string, m *pubsub.Message, fn func(ctx context.Context, tx *sql.Tx) error) (bool, error) {
	applied := false
	err := in.HandleBatch(ctx, consumer, []*pubsub.Message{m}, func(ctx context.Context, tx *sql.Tx, _ *pubsub.Message) error {
		applied = true
		return fn(ctx, tx)
	})
	return applied && err == nil, err
}

// HandleBatch handles msgs, in order, in one transaction (fewer commits
// for a consumer that receives in batches): for each message it records
// (consumer, source, id) and, when the record is new, runs fn. Messages
// already recorded, earlier or in msgs, are skipped. When fn or the commit
// fails, nothing of the batch is kept and the error is returned, naming
// the message that failed.
func (in *Inbox) HandleBatch(ctx context.Context, consumer string, msgs []*pubsub.Message, fn func(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error) error {
	for _, m := range msgs {
		if m == nil || m.Source == "" || m.ID == "" {
			return fmt.Errorf("inbox: a message needs a source and an ID: %w", pubsub.ErrInvalidMessage)
		}
	}
	tx, err := in.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("inbox: beginning a transaction: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UnixNano()
	insert := tx.StmtContext(ctx, in.insert)
	var dups []*pubsub.Message
	for _, m := range msgs {
		res, err := insert.ExecContext(ctx, consumer, m.Source, m.ID, now)
		if err != nil {
			return fmt.Errorf("inbox: recording message %s (source %s) for %s: %w", m.ID, m.Source, consumer, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("inbox: recording message %s (source %s) for %s: %w", m.ID, m.Source, consumer, err)
		}
		if n == 0 {
			dups = append(dups, m)
			continue
		}
		if err := fn(ctx, tx, m); err != nil {
			return fmt.Errorf("inbox: %s handling message %s (source %s): %w", consumer, m.ID, m.Source, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("inbox: committing %d messages for %s: %w", len(msgs), consumer, err)
	}
	if in.hooks.OnDuplicate != nil {
		for _, m := range dups {
			in.hooks.OnDuplicate(consumer, m)
		}
	}
	return nil
}

// Handler adapts fn to a pubsub.Router handler: each message is handled
// with Handle for consumer, and a redelivered one is acknowledged without
// running fn. An error of fn (or of the database) is the handler's error:
// the Router retries the message, and parks it in the end.
//
//	r.Handle("shop.order.placed", in.Handler("billing", func(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error {
//		_, err := tx.ExecContext(ctx, "INSERT INTO invoices (order_id) VALUES (?)", m.Subject)
//		return err
//	}))
func (in *Inbox) Handler(consumer string, fn func(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error) pubsub.Handler {
	return func(ctx context.Context, m *pubsub.Message) error {
		_, err := in.Handle(ctx, consumer, m, func(ctx context.Context, tx *sql.Tx) error { return fn(ctx, tx, m) })
		return err
	}
}

// BatchHandler adapts fn to a pubsub.Router batch handler: each batch is
// handled with HandleBatch for consumer, in one transaction.
func (in *Inbox) BatchHandler(consumer string, fn func(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error) pubsub.BatchHandler {
	return func(ctx context.Context, msgs []*pubsub.Message) error {
		return in.HandleBatch(ctx, consumer, msgs, fn)
	}
}

// Seen reports whether consumer has handled the message (source, id) and
// its record is still kept.
func (in *Inbox) Seen(ctx context.Context, consumer, source, id string) (bool, error) {
	var one int
	err := in.db.QueryRowContext(ctx, in.dialect.Rebind("SELECT 1 FROM "+in.table+" WHERE consumer = ? AND source = ? AND id = ?"),
		consumer, source, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inbox: looking up message %s (source %s) for %s: %w", id, source, consumer, err)
	}
	return true, nil
}

// Purge deletes the records of messages handled before before, of every
// consumer, and returns how many it deleted. A message delivered again
// after its record is purged is handled again: keep records longer than
// the broker may redeliver (its retention, or its deduplication window
// plus the longest outage of a consumer).
func (in *Inbox) Purge(ctx context.Context, before time.Time) (int64, error) {
	res, err := in.db.ExecContext(ctx, in.dialect.Rebind("DELETE FROM "+in.table+" WHERE received_at < ?"), before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("inbox: purging records before %s: %w", before.Format(time.RFC3339), err)
	}
	return res.RowsAffected()
}

// RunPurge purges the records older than retention every interval, until
// ctx ends; it then returns ctx.Err(). A failed purge is retried at the
// next interval; Hooks.OnPurge is told of each.
func (in *Inbox) RunPurge(ctx context.Context, retention, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-t.C:
			n, err := in.Purge(ctx, now.Add(-retention))
			if in.hooks.OnPurge != nil && ctx.Err() == nil {
				in.hooks.OnPurge(n, err)
			}
		}
	}
}
