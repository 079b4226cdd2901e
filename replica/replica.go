package replica

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"time"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/internal/headwatch"
	"github.com/fjord-data/fjord/projection"
)

const checkpointTable = "fjord_replica_checkpoints"

// Options configure a Replica. The zero value works.
type Options struct {
	// MaxBatch is the most changes applied in one transaction (default 1000).
	MaxBatch int
	// Dialect of the database (default: detected from its driver).
	Dialect projection.Dialect
	// TombstoneRetention is how long a deleted entity's tombstone is kept
	// (0: for ever). Within it, a change older than the deletion that
	// arrives late is rejected; once the tombstone is purged, the deletion
	// can no longer be told from a key never seen, and such a late change
	// would bring the entity back. Choose it above the longest a change can
	// be delayed or redelivered (broker retention, parking and requeue).
	// Run purges every TombstoneRetention/4 (at least a second, at most an
	// hour); a replica fed by messages calls PurgeTombstones itself.
	TombstoneRetention time.Duration
	// Now is the clock tombstones are dated by (nil: time.Now).
	Now func() time.Time
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// Replica is a table of another service's entities, named like the
// replica, with columns key, version, deleted, data, position (of the
// change that wrote the row) and deleted_at (when a tombstone was written,
// in Unix milliseconds; 0 for live rows). Query it through Get and All, or with SQL
// (live rows have deleted = 0). It is safe for concurrent use; run one Run
// at a time.
type Replica struct {
	db      *sql.DB
	name    string
	src     Source
	opts    Options
	dialect projection.Dialect
	applied headwatch.Head // position applied up to
}

// New returns the replica name (also its table's name: letters, digits
// and '_') in db, fed by src. opts may be nil.
func New(db *sql.DB, name string, src Source, opts *Options) *Replica {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d := o.Dialect
	if d == projection.DetectDialect {
		d = projection.DialectOf(db)
	}
	return &Replica{db: db, name: name, src: src, opts: o, dialect: d}
}

func (r *Replica) q(query string) string { return r.dialect.Rebind(query) }

// Init creates the replica's tables if they do not exist and returns its
// checkpoint.
func (r *Replica) Init(ctx context.Context) (eventstore.Position, error) {
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS " + r.name + " (key TEXT PRIMARY KEY, version BIGINT NOT NULL, deleted INTEGER NOT NULL, data " + r.dialect.Blob() + ", position BIGINT NOT NULL, deleted_at BIGINT NOT NULL DEFAULT 0)",
		"CREATE TABLE IF NOT EXISTS " + checkpointTable + " (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
	} {
		if _, err := r.db.ExecContext(ctx, q); err != nil {
			return 0, fmt.Errorf("replica %s: creating tables: %w", r.name, err)
		}
	}
	if err := r.migrateDeletedAt(ctx); err != nil {
		return 0, fmt.Errorf("replica %s: adding deleted_at: %w", r.name, err)
	}
	var pos eventstore.Position
	err := r.db.QueryRowContext(ctx, r.q("SELECT position FROM "+checkpointTable+" WHERE name = ?"), r.name).Scan(&pos)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("replica %s: %w", r.name, err)
	}
	r.advance(pos)
	return pos, nil
}

// Apply applies changes in one transaction, each only if its version is
// above the row's, and moves the checkpoint to the highest position among
// them.
func (r *Replica) Apply(ctx context.Context, changes ...Change) (err error) {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	up, err := tx.PrepareContext(ctx, r.q("INSERT INTO "+r.name+" (key, version, deleted, data, position, deleted_at) VALUES (?, ?, ?, ?, ?, ?) "+
		"ON CONFLICT (key) DO UPDATE SET version = excluded.version, deleted = excluded.deleted, data = excluded.data, position = excluded.position, deleted_at = excluded.deleted_at "+
		"WHERE excluded.version > "+r.name+".version"))
	if err != nil {
		return err
	}
	var pos eventstore.Position
	now := r.opts.Now().UnixMilli()
	for _, c := range changes {
		pos = max(pos, c.Position)
		if c.Key == "" {
			continue
		}
		if _, err := up.ExecContext(ctx, c.Key, int64(c.Version), boolInt(c.Deleted), c.Data, int64(c.Position), deletedAt(c.Deleted, now)); err != nil {
			return fmt.Errorf("replica %s: applying %s@%d: %w", r.name, c.Key, c.Version, err)
		}
	}
	if pos > 0 {
		if err := r.saveCheckpoint(ctx, tx, pos); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	r.advance(pos)
	return nil
}

func (r *Replica) saveCheckpoint(ctx context.Context, tx *sql.Tx, pos eventstore.Position) error {
	_, err := tx.ExecContext(ctx, r.q("INSERT INTO "+checkpointTable+" (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position WHERE excluded.position > "+checkpointTable+".position"),
		r.name, int64(pos))
	return err
}

// Bootstrap replaces the replica's contents with the owner's snapshot, in
// one transaction, and sets its checkpoint to the snapshot's position, from
// which Run then catches up.
func (r *Replica) Bootstrap(ctx context.Context, snap Snapshot) (err error) {
	if _, err := r.Init(ctx); err != nil {
		return err
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			err = fmt.Errorf("replica %s: bootstrap: %w", r.name, err)
		}
	}()
	for _, q := range []string{"DELETE FROM " + r.name, r.q("DELETE FROM " + checkpointTable + " WHERE name = ?")} {
		if _, err := tx.ExecContext(ctx, q, argsFor(q, r.name)...); err != nil {
			return err
		}
	}
	ins, err := tx.PrepareContext(ctx, r.q("INSERT INTO "+r.name+" (key, version, deleted, data, position, deleted_at) VALUES (?, ?, ?, ?, ?, ?)"))
	if err != nil {
		return err
	}
	now := r.opts.Now().UnixMilli()
	for row, err := range snap.Rows {
		if err != nil {
			return err
		}
		if _, err := ins.ExecContext(ctx, row.Key, int64(row.Version), boolInt(row.Deleted), row.Data, int64(snap.Position), deletedAt(row.Deleted, now)); err != nil {
			return err
		}
	}
	if err := r.saveCheckpoint(ctx, tx, snap.Position); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	r.advance(snap.Position)
	return nil
}

// Run applies the source's changes from the checkpoint on, in batches,
// until ctx ends (returning ctx.Err()) or an error occurs.
func (r *Replica) Run(ctx context.Context) error {
	pos, err := r.Init(ctx)
	if err != nil {
		return err
	}
	subCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	changes := make(chan Change, 2*r.opts.MaxBatch)
	srcErr := make(chan error, 1)
	wg.Go(func() {
		for c, err := range r.src.Changes(subCtx, pos) {
			if err != nil {
				srcErr <- err
				return
			}
			select {
			case changes <- c:
			case <-subCtx.Done():
				return
			}
		}
	})
	var purge <-chan time.Time
	if r.opts.TombstoneRetention > 0 {
		t := time.NewTicker(min(max(r.opts.TombstoneRetention/4, time.Second), time.Hour))
		defer t.Stop()
		purge = t.C
	}
	var batch []Change
	for {
		if len(batch) > 0 && (len(batch) >= r.opts.MaxBatch || len(changes) == 0) {
			if err := r.Apply(ctx, batch...); err != nil {
				return err
			}
			batch = batch[:0]
			continue
		}
		select {
		case c := <-changes:
			batch = append(batch, c)
		case err := <-srcErr:
			return err
		case <-purge:
			if _, err := r.PurgeTombstones(ctx); err != nil {
				return err
			}
		}
	}
}

// Get returns the live row of key, or false when there is none (never
// replicated, or deleted).
func (r *Replica) Get(ctx context.Context, key string) (Row, bool, error) {
	row := Row{Key: key}
	err := r.db.QueryRowContext(ctx, r.q("SELECT version, data FROM "+r.name+" WHERE key = ? AND deleted = 0"), key).Scan(&row.Version, &row.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return Row{}, false, nil
	}
	return row, err == nil, err
}

// All yields the live rows in key order (tombstones are left out). The
// rows are read in one query; stop early by breaking out of the loop.
func (r *Replica) All(ctx context.Context) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		rows, err := r.db.QueryContext(ctx, "SELECT key, version, data FROM "+r.name+" WHERE deleted = 0 ORDER BY key")
		if err != nil {
			yield(Row{}, fmt.Errorf("replica %s: %w", r.name, err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var row Row
			if err := rows.Scan(&row.Key, &row.Version, &row.Data); err != nil {
				yield(Row{}, fmt.Errorf("replica %s: %w", r.name, err))
				return
			}
			if !yield(row, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(Row{}, fmt.Errorf("replica %s: %w", r.name, err))
		}
	}
}

// WaitFor blocks until the replica has applied everything up to pos, or
// ctx ends (the error wraps ctx.Err()).
func (r *Replica) WaitFor(ctx context.Context, pos eventstore.Position) error {
	if pos == 0 {
		return nil
	}
	if _, err := r.applied.Wait(ctx, uint64(pos)-1); err != nil {
		return fmt.Errorf("replica %s: waiting for position %d, at %d: %w", r.name, pos, r.applied.Load(), err)
	}
	return nil
}

func (r *Replica) advance(pos eventstore.Position) { r.applied.Raise(uint64(pos)) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func argsFor(q string, name string) []any {
	for _, c := range q {
		if c == '?' || c == '$' {
			return []any{name}
		}
	}
	return nil
}
