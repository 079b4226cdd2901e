package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/fjord-data/fjord/internal/backoff"
	"time"

	"github.com/fjord-data/fjord/eventstore"
)

const (
	checkpointTable = "fjord_projection_checkpoints"
	parkedTable     = "fjord_projection_parked"
	shadowSuffix    = "__shadow"
)

// target is the set of tables a transaction writes: the live read model,
// whose checkpoint moves with it, or a rebuild's shadow tables.
type target struct {
	suffix string
	gen    int64
	live   bool
}

func (p *Projector) begin(ctx context.Context, t target) (*Tx, error) {
	sqlTx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: sqlTx, dialect: p.dialect, suffix: t.suffix, gen: t.gen, stmts: p.stmts}, nil
}

// ddlLockKey is the PostgreSQL advisory lock under which projections
// create their tables.
const ddlLockKey int64 = 0x666a6f7264_01 // "fjord", 1

// init creates the projection's tables when they do not exist and returns
// the stored checkpoint.
func (p *Projector) init(ctx context.Context) (cp checkpoint, err error) {
	tx, err := p.begin(ctx, target{gen: 1, live: true})
	if err != nil {
		return checkpoint{}, fmt.Errorf("projection %s: %w", p.def.Name, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if p.dialect == PostgreSQL {
		// Concurrent CREATE TABLE IF NOT EXISTS of one table fails in
		// PostgreSQL (a unique violation in pg_type): projections that start
		// together, in one process or several, take turns here.
		if _, err := tx.Tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", ddlLockKey); err != nil {
			return checkpoint{}, fmt.Errorf("projection %s: locking to create its tables: %w", p.def.Name, err)
		}
	}
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS " + checkpointTable + " (name TEXT PRIMARY KEY, position BIGINT NOT NULL, generation BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
		"CREATE TABLE IF NOT EXISTS " + parkedTable + " (name TEXT NOT NULL, position BIGINT NOT NULL, stream TEXT NOT NULL, version BIGINT NOT NULL, type TEXT NOT NULL, data " + p.dialect.Blob() + ", error TEXT NOT NULL, parked_at BIGINT NOT NULL, PRIMARY KEY (name, position))",
	} {
		if _, err := tx.Tx.ExecContext(ctx, q); err != nil {
			return checkpoint{}, fmt.Errorf("projection %s: creating its tables: %w", p.def.Name, err)
		}
	}
	err = tx.Tx.QueryRowContext(ctx, p.dialect.Rebind("SELECT position, generation FROM "+checkpointTable+" WHERE name = ?"), p.def.Name).
		Scan(&cp.position, &cp.generation)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		cp = checkpoint{generation: 1}
		if _, err = tx.Tx.ExecContext(ctx, p.dialect.Rebind("INSERT INTO "+checkpointTable+" (name, position, generation, updated_at) VALUES (?, 0, 1, ?)"),
			p.def.Name, time.Now().UnixNano()); err != nil {
			return checkpoint{}, fmt.Errorf("projection %s: %w", p.def.Name, err)
		}
		if p.def.Setup != nil {
			if err = p.def.Setup(ctx, tx); err != nil {
				return checkpoint{}, fmt.Errorf("projection %s: setup: %w", p.def.Name, err)
			}
		}
	case err != nil:
		return checkpoint{}, fmt.Errorf("projection %s: reading its checkpoint: %w", p.def.Name, err)
	}
	if err = tx.Commit(); err != nil {
		return checkpoint{}, fmt.Errorf("projection %s: %w", p.def.Name, err)
	}
	return cp, nil
}

// apply applies events and moves the checkpoint to upTo, in one
// transaction; if that fails, it applies them one per transaction under
// the error policy. It returns the new checkpoint.
func (p *Projector) apply(ctx context.Context, t target, cp checkpoint, events []eventstore.RecordedEvent, upTo eventstore.Position) (checkpoint, error) {
	next, _, err := p.commit(ctx, t, cp, events, upTo, nil)
	if err == nil || errors.Is(err, ErrCheckpointMoved) || ctx.Err() != nil {
		return next, err
	}
	p.opts.Logger.DebugContext(ctx, "projection: batch failed; applying its events one by one", "projection", p.def.Name, "err", err)
	for _, e := range events {
		if cp, err = p.applyOne(ctx, t, cp, e); err != nil {
			return cp, err
		}
	}
	if upTo > cp.position {
		cp, _, err = p.commit(ctx, t, cp, nil, upTo, nil)
	}
	return cp, err
}

// applyOne applies one event under the error policy.
func (p *Projector) applyOne(ctx context.Context, t target, cp checkpoint, e eventstore.RecordedEvent) (checkpoint, error) {
	pol := p.opts.OnError
	for attempt := 1; ; attempt++ {
		next, _, err := p.commit(ctx, t, cp, []eventstore.RecordedEvent{e}, e.Position, nil)
		if err == nil || errors.Is(err, ErrCheckpointMoved) || ctx.Err() != nil {
			return next, err
		}
		herr := HandlerError{Projection: p.def.Name, Event: e, Attempts: attempt, Err: err}
		if p.opts.Hooks.OnError != nil {
			p.opts.Hooks.OnError(herr)
		}
		if pol.Retries < 0 || attempt <= pol.Retries {
			if werr := backoff.Sleep(ctx, retryDelay(pol, attempt)); werr != nil {
				return cp, werr
			}
			continue
		}
		if pol.Then != Park {
			return cp, &herr
		}
		p.opts.Logger.WarnContext(ctx, "projection: parking an event", "projection", p.def.Name, "position", e.Position, "err", err)
		next, _, perr := p.commit(ctx, t, cp, nil, e.Position, &herr)
		return next, perr
	}
}

// commit runs one transaction: the events through the handler (or, with
// park, a parked row instead), then the checkpoint.
func (p *Projector) commit(ctx context.Context, t target, cp checkpoint, events []eventstore.RecordedEvent, upTo eventstore.Position, park *HandlerError) (_ checkpoint, n int, err error) {
	start := time.Now()
	tx, err := p.begin(ctx, t)
	if err != nil {
		return cp, 0, err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	for _, e := range events {
		if err := p.def.Handle(ctx, tx, e); err != nil {
			return cp, 0, err
		}
	}
	if park != nil {
		e := park.Event
		if _, err := tx.Exec(ctx, "INSERT INTO "+parkedTable+" (name, position, stream, version, type, data, error, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, position) DO NOTHING",
			p.def.Name, int64(e.Position), string(e.Stream), int64(e.Version), e.Type, e.Data, park.Err.Error(), time.Now().UnixNano()); err != nil {
			return cp, 0, fmt.Errorf("parking: %w", err)
		}
	}
	next := cp
	if upTo > cp.position {
		next.position = upTo
	}
	if t.live && next.position != cp.position {
		res, err := tx.Exec(ctx, "UPDATE "+checkpointTable+" SET position = ?, updated_at = ? WHERE name = ? AND position = ? AND generation = ?",
			int64(next.position), time.Now().UnixNano(), p.def.Name, int64(cp.position), cp.generation)
		if err != nil {
			return cp, 0, fmt.Errorf("saving the checkpoint: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return cp, 0, errors.Join(ErrCheckpointMoved, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return cp, 0, err
	}
	if p.opts.Hooks.OnCommit != nil {
		p.opts.Hooks.OnCommit(CommitInfo{Events: len(events), Position: next.position, Duration: time.Since(start)})
	}
	return next, len(events), nil
}

func retryDelay(pol ErrorPolicy, attempt int) time.Duration {
	return backoff.Equal(pol.Backoff, pol.MaxBackoff, attempt)
}
