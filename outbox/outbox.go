package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fjord-data/fjord/internal/sqldialect"
	"github.com/fjord-data/fjord/pubsub"
)

// DefaultTable is the outbox table's name when Options.Table is empty.
const DefaultTable = "fjord_outbox"

// Options configure an Outbox. The zero value works.
type Options struct {
	// Table names the outbox table (default DefaultTable): [a-z_][a-z0-9_]*,
	// at most 48 bytes. On PostgreSQL it is created in the connection's
	// search path. A service with several outboxes (one per topic) gives
	// each its own table.
	Table string
}

// Outbox stores messages in the service's own database, in the service's
// own transactions, for a Relay to publish once they commit. It is safe
// for concurrent use.
type Outbox struct {
	db      *sql.DB
	dialect sqldialect.Dialect
	table   string
	scope   string // PostgreSQL: the schema the table is in, which the advisory lock keys include
	wake    wakers
	inserts struct {
		sync.Mutex
		stmts map[int]*sql.Stmt // the INSERT of n rows, prepared on db
	}
}

// ErrInvalidOptions is matched by the errors of Open for options it cannot
// use.
var ErrInvalidOptions = errors.New("outbox: invalid options")

// Open returns the outbox of db (SQLite or PostgreSQL over database/sql),
// creating its tables when they do not exist. Open does not close db.
func Open(ctx context.Context, db *sql.DB, opts *Options) (*Outbox, error) {
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
	ob := &Outbox{db: db, dialect: sqldialect.Of(db), table: o.Table}
	for _, stmt := range ob.schema() {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("outbox: creating table %s: %w", ob.table, err)
		}
	}
	if ob.dialect == sqldialect.PostgreSQL {
		// The schema the search path resolves the table to.
		err := db.QueryRowContext(ctx, "SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = to_regclass($1)",
			ob.table).Scan(&ob.scope)
		if err != nil {
			return nil, fmt.Errorf("outbox: finding the schema of %s: %w", ob.table, err)
		}
	}
	if err := ob.prepare(ctx); err != nil {
		return nil, fmt.Errorf("outbox: preparing statements: %w", err)
	}
	return ob, nil
}

// schema returns the statements that create the outbox's tables.
func (o *Outbox) schema() []string {
	seq := "seq INTEGER PRIMARY KEY"
	if o.dialect == sqldialect.PostgreSQL {
		seq = "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + o.table + ` (
	` + seq + `,
	msg_key TEXT NOT NULL,
	id TEXT NOT NULL,
	source TEXT NOT NULL,
	type TEXT NOT NULL,
	subject TEXT NOT NULL,
	time TEXT NOT NULL,
	content_type TEXT NOT NULL,
	data_schema TEXT NOT NULL,
	extensions TEXT NOT NULL,
	data ` + o.dialect.Blob() + `,
	enqueued_at BIGINT NOT NULL)`,
		// The SQLite relays' leader lease (see Relay).
		`CREATE TABLE IF NOT EXISTS ` + o.leaseTable() + ` (
	name TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	expires BIGINT NOT NULL)`,
	}
}

func (o *Outbox) leaseTable() string { return o.table + "_leader" }

// Table returns the outbox table's name.
func (o *Outbox) Table() string { return o.table }

// columns are the outbox columns a row is written with, in order.
const columns = "msg_key, id, source, type, subject, time, content_type, data_schema, extensions, data, enqueued_at"

const numColumns = 11

// maxRowsPerInsert bounds one INSERT statement (11 parameters a row).
const maxRowsPerInsert = 256

// Enqueue writes msgs to the outbox in tx, the caller's own transaction:
// they are published if and only if tx commits, after it commits, in the
// order of Enqueue calls and of msgs within a call for each ordering key
// (pubsub.Message.OrderKey). It returns an error wrapping
// pubsub.ErrInvalidMessage, and writes nothing, when a message is not a
// valid CloudEvent. tx must belong to the Outbox's database.
//
// On PostgreSQL, Enqueue also takes a transaction-scoped advisory lock per
// ordering key, held until tx ends, so that two transactions writing the
// same key commit in the order they enqueued (see the package doc). Call
// Enqueue late in the transaction, after the business writes: a
// transaction that enqueues key k and then waits for a row lock held by
// another transaction that wants to enqueue k deadlocks, and PostgreSQL
// aborts one of them (SQLSTATE 40P01; retry it).
//
// On SQLite, the relays of this Outbox in this process are woken at once:
// they wait for tx to end and then publish. On PostgreSQL, relays learn of
// the commit from their Notifier (pgoutbox: LISTEN/NOTIFY), and relays
// without one, or in other processes on SQLite, from their poll.
func (o *Outbox) Enqueue(ctx context.Context, tx *sql.Tx, msgs ...*pubsub.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	for i, m := range msgs {
		if m == nil {
			return fmt.Errorf("outbox: message %d is nil: %w", i, pubsub.ErrInvalidMessage)
		}
		if err := m.Validate(); err != nil {
			return fmt.Errorf("outbox: message %d (id %q): %w", i, m.ID, err)
		}
	}
	if o.dialect == sqldialect.PostgreSQL {
		if _, err := tx.ExecContext(ctx, o.lockAndNotify(msgs)); err != nil {
			return fmt.Errorf("outbox: locking the messages' keys: %w", err)
		}
	}
	now := time.Now().UnixNano()
	for chunk := range slices.Chunk(msgs, maxRowsPerInsert) {
		args := make([]any, 0, len(chunk)*numColumns)
		for _, m := range chunk {
			row, err := rowOf(m, now)
			if err != nil {
				return err
			}
			args = append(args, row...)
		}
		if err := o.exec(ctx, tx, len(chunk), args); err != nil {
			return fmt.Errorf("outbox: writing %d messages to %s: %w", len(chunk), o.table, err)
		}
	}
	if o.dialect == sqldialect.SQLite {
		o.wake.signal(true)
	}
	return nil
}

// preparedSizes are the row counts whose INSERT statements Open prepares:
// Enqueue cannot prepare on the pool while the caller's transaction holds
// a connection (a pool of one would deadlock).
var preparedSizes = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 20, 32, 50, 64, 100, 128, maxRowsPerInsert}

// prepare prepares the INSERT statements of preparedSizes.
func (o *Outbox) prepare(ctx context.Context) error {
	o.inserts.stmts = make(map[int]*sql.Stmt, len(preparedSizes))
	for _, n := range preparedSizes {
		st, err := o.db.PrepareContext(ctx, o.insertSQL(n))
		if err != nil {
			return errors.Join(err, o.Close())
		}
		o.inserts.stmts[n] = st
	}
	return nil
}

// exec runs the INSERT of n rows in tx, prepared when n is one of
// preparedSizes.
func (o *Outbox) exec(ctx context.Context, tx *sql.Tx, n int, args []any) error {
	o.inserts.Lock()
	st := o.inserts.stmts[n]
	o.inserts.Unlock()
	var err error
	if st != nil {
		_, err = tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	} else {
		_, err = tx.ExecContext(ctx, o.insertSQL(n), args...)
	}
	return err
}

// Close releases the outbox's prepared statements. It does not close the
// database; Enqueue still works after Close, preparing its statements
// each time.
func (o *Outbox) Close() error {
	o.inserts.Lock()
	defer o.inserts.Unlock()
	var errs []error
	for _, st := range o.inserts.stmts {
		errs = append(errs, st.Close())
	}
	o.inserts.stmts = nil
	return errors.Join(errs...)
}

// Notify wakes the relays of this Outbox in this process, as a commit
// does. Enqueue calls it; call it yourself after rows were written by
// other means (another process sharing a SQLite file, for instance).
func (o *Outbox) Notify() { o.wake.signal(false) }

// Pending returns how many messages wait in the outbox (committed, not yet
// published).
func (o *Outbox) Pending(ctx context.Context) (int, error) {
	var n int
	err := o.db.QueryRowContext(ctx, "SELECT count(*) FROM "+o.table).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("outbox: counting pending messages: %w", err)
	}
	return n, nil
}

// channel is the PostgreSQL notification channel of the outbox.
func (o *Outbox) channel() string { return o.table }

// lockAndNotify returns the statement that notifies the outbox's channel
// (delivered when the transaction commits) and takes the advisory lock of
// each distinct ordering key of msgs, in ascending order so that two
// Enqueue calls never wait for each other in a cycle.
func (o *Outbox) lockAndNotify(msgs []*pubsub.Message) string {
	keys := make([]int64, 0, len(msgs))
	for _, m := range msgs {
		keys = append(keys, o.keyLock(m.OrderKey()))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var b strings.Builder
	b.WriteString("SELECT pg_notify('" + o.channel() + "', '')")
	for _, k := range keys {
		b.WriteString(", pg_advisory_xact_lock(")
		b.WriteString(strconv.FormatInt(k, 10))
		b.WriteString(")")
	}
	return b.String()
}

// keyLock is the advisory lock key of an ordering key of this outbox.
func (o *Outbox) keyLock(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte("fjord/outbox/" + o.scope + "." + o.table + "\x00" + key))
	return int64(h.Sum64())
}

// insertSQL returns the INSERT statement for n rows.
func (o *Outbox) insertSQL(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + o.table + " (" + columns + ") VALUES ")
	row := "(" + strings.Repeat("?, ", numColumns-1) + "?)"
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return o.dialect.Rebind(b.String())
}

// rowOf returns the column values of m, in the order of columns.
func rowOf(m *pubsub.Message, now int64) ([]any, error) {
	var t, ext string
	if !m.Time.IsZero() {
		t = m.Time.UTC().Format(time.RFC3339Nano)
	}
	if len(m.Extensions) > 0 {
		b, err := json.Marshal(m.Extensions)
		if err != nil {
			return nil, fmt.Errorf("outbox: message %q: extensions: %w", m.ID, err)
		}
		ext = string(b)
	}
	data := m.Data
	if data == nil {
		data = []byte{}
	}
	return []any{m.Key, m.ID, m.Source, m.Type, m.Subject, t, m.DataContentType, m.DataSchema, ext, data, now}, nil
}

// row is one outbox row as the relay reads it.
type row struct {
	seq      int64
	enqueued int64
	msg      *pubsub.Message
}

const selectColumns = "seq, " + columns

// scanRow reads one row of selectColumns.
func scanRow(rs *sql.Rows) (row, error) {
	var r row
	var m pubsub.Message
	var t, ext string
	err := rs.Scan(&r.seq, &m.Key, &m.ID, &m.Source, &m.Type, &m.Subject, &t, &m.DataContentType,
		&m.DataSchema, &ext, &m.Data, &r.enqueued)
	if err != nil {
		return r, err
	}
	if t != "" {
		if m.Time, err = time.Parse(time.RFC3339Nano, t); err != nil {
			return r, fmt.Errorf("outbox: row %d: time %q: %w", r.seq, t, err)
		}
	}
	if ext != "" {
		if err := json.Unmarshal([]byte(ext), &m.Extensions); err != nil {
			return r, fmt.Errorf("outbox: row %d: extensions: %w", r.seq, err)
		}
	}
	r.msg = &m
	return r, nil
}

// wakers are the wake channels of the relays of one Outbox in this
// process.
type wakers struct {
	mu struct {
		sync.Mutex
		chans map[*wakeChan]struct{}
	}
}

// wakeChan wakes one relay. pending is set when a transaction that wrote
// rows may still be open (Enqueue runs before the commit).
type wakeChan struct {
	c       chan struct{}
	mu      sync.Mutex
	pending bool
}

func (w *wakers) add() *wakeChan {
	wc := &wakeChan{c: make(chan struct{}, 1)}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.chans == nil {
		w.mu.chans = map[*wakeChan]struct{}{}
	}
	w.mu.chans[wc] = struct{}{}
	return wc
}

func (w *wakers) remove(wc *wakeChan) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.mu.chans, wc)
}

func (w *wakers) signal(pending bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for wc := range w.mu.chans {
		wc.wake(pending)
	}
}

func (wc *wakeChan) wake(pending bool) {
	if pending {
		wc.mu.Lock()
		wc.pending = true
		wc.mu.Unlock()
	}
	select {
	case wc.c <- struct{}{}:
	default:
	}
}

// takePending reports and clears whether a woken transaction may still be
// open.
func (wc *wakeChan) takePending() bool {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	p := wc.pending
	wc.pending = false
	return p
}
