package replica

import (
	"context"
	"fmt"
)

// PurgeTombstones removes the tombstones written more than
// Options.TombstoneRetention ago and returns how many it removed; with no
// retention it removes none. After the purge, a change older than the
// deletion that arrives late is applied as if the key were new (see
// Options.TombstoneRetention). Safe to call concurrently with Apply.
func (r *Replica) PurgeTombstones(ctx context.Context) (int64, error) {
	if r.opts.TombstoneRetention <= 0 {
		return 0, nil
	}
	if _, err := r.Init(ctx); err != nil {
		return 0, err
	}
	cutoff := r.opts.Now().Add(-r.opts.TombstoneRetention).UnixMilli()
	res, err := r.db.ExecContext(ctx, r.q("DELETE FROM "+r.name+" WHERE deleted = 1 AND deleted_at < ?"), cutoff)
	if err != nil {
		return 0, fmt.Errorf("replica %s: purging tombstones: %w", r.name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("replica %s: purging tombstones: %w", r.name, err)
	}
	if n > 0 {
		r.opts.Logger.InfoContext(ctx, "replica: purged tombstones", "replica", r.name, "count", n, "retention", r.opts.TombstoneRetention)
	}
	return n, nil
}

// migrateDeletedAt adds the deleted_at column to a table created before it
// existed, dating its tombstones now, so their retention starts today.
func (r *Replica) migrateDeletedAt(ctx context.Context) error {
	rows, err := r.db.QueryContext(ctx, "SELECT deleted_at FROM "+r.name+" WHERE 1 = 0")
	if err == nil {
		return rows.Close()
	}
	if _, err := r.db.ExecContext(ctx, "ALTER TABLE "+r.name+" ADD COLUMN deleted_at BIGINT NOT NULL DEFAULT 0"); err != nil {
		if rows, again := r.db.QueryContext(ctx, "SELECT deleted_at FROM "+r.name+" WHERE 1 = 0"); again == nil {
			return rows.Close() // another process added it first
		}
		return err
	}
	_, err = r.db.ExecContext(ctx, r.q("UPDATE "+r.name+" SET deleted_at = ? WHERE deleted = 1"), r.opts.Now().UnixMilli())
	return err
}

// deletedAt is the deleted_at of a row: now for a tombstone, 0 if live.
func deletedAt(deleted bool, now int64) int64 {
	if deleted {
		return now
	}
	return 0
}
