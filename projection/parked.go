package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/fjord-data/fjord/eventstore"
)

// ErrNotParked is matched by the error of retrying or discarding a
// position that the projection has not parked (or no longer has).
var ErrNotParked = errors.New("projection: no parked event at that position")

// ParkedEvent is an event the projection's handler kept failing on and
// that the Park policy set aside (in table fjord_projection_parked).
type ParkedEvent struct {
	Position eventstore.Position
	Stream   eventstore.StreamID
	Version  eventstore.Version
	Type     string
	Data     []byte
	// Err is the handler's last error, as text.
	Err string
	// ParkedAt is when it was parked, or last retried and failed again.
	ParkedAt time.Time
}

// ListParked yields the projection's parked events in position order. It
// creates the projection's tables first if they do not exist, as Run does.
func (p *Projector) ListParked(ctx context.Context) iter.Seq2[ParkedEvent, error] {
	return func(yield func(ParkedEvent, error) bool) {
		if _, err := p.init(ctx); err != nil {
			yield(ParkedEvent{}, err)
			return
		}
		rows, err := p.db.QueryContext(ctx, p.dialect.Rebind("SELECT position, stream, version, type, data, error, parked_at FROM "+parkedTable+" WHERE name = ? ORDER BY position"), p.def.Name)
		if err != nil {
			yield(ParkedEvent{}, fmt.Errorf("projection %s: listing parked events: %w", p.def.Name, err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			pe, err := scanParked(rows)
			if err != nil {
				yield(ParkedEvent{}, fmt.Errorf("projection %s: listing parked events: %w", p.def.Name, err))
				return
			}
			if !yield(pe, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(ParkedEvent{}, fmt.Errorf("projection %s: listing parked events: %w", p.def.Name, err))
		}
	}
}

func scanParked(rows *sql.Rows) (ParkedEvent, error) {
	var pe ParkedEvent
	var pos, version, at int64
	var stream string
	if err := rows.Scan(&pos, &stream, &version, &pe.Type, &pe.Data, &pe.Err, &at); err != nil {
		return ParkedEvent{}, err
	}
	pe.Position, pe.Stream, pe.Version = eventstore.Position(pos), eventstore.StreamID(stream), eventstore.Version(version)
	pe.ParkedAt = time.Unix(0, at)
	return pe, nil
}

// RetryParked applies the event parked at pos to the live read model now,
// through the projection's handler, and removes it from the parked events,
// in one transaction. The event is read again from the store (the parked
// copy stands in when the store no longer has it), and is applied after
// the events that followed it: the handler must tolerate that. When the
// handler fails, the event stays parked with the new error (the returned
// one, wrapped in a *HandlerError). The error matches ErrNotParked when
// nothing is parked at pos. It may run while Run does.
func (p *Projector) RetryParked(ctx context.Context, pos eventstore.Position) error {
	pe, err := p.parkedAt(ctx, pos)
	if err != nil {
		return err
	}
	e, err := p.recorded(ctx, pe)
	if err != nil {
		return err
	}
	herr := p.retryTx(ctx, e)
	if herr == nil {
		return nil
	}
	if errors.Is(herr, ErrNotParked) || ctx.Err() != nil {
		return herr
	}
	wrapped := &HandlerError{Projection: p.def.Name, Event: e, Attempts: 1, Err: herr}
	if _, err := p.db.ExecContext(ctx, p.dialect.Rebind("UPDATE "+parkedTable+" SET error = ?, parked_at = ? WHERE name = ? AND position = ?"),
		herr.Error(), nowNano(), p.def.Name, int64(pos)); err != nil {
		return errors.Join(wrapped, fmt.Errorf("projection %s: recording the new error of parked event %d: %w", p.def.Name, pos, err))
	}
	return wrapped
}

// retryTx runs the handler on e and deletes its parked row, in one
// transaction on the live tables.
func (p *Projector) retryTx(ctx context.Context, e eventstore.RecordedEvent) (err error) {
	var gen int64
	if err := p.db.QueryRowContext(ctx, p.dialect.Rebind("SELECT generation FROM "+checkpointTable+" WHERE name = ?"), p.def.Name).Scan(&gen); err != nil {
		return fmt.Errorf("projection %s: reading its generation: %w", p.def.Name, err)
	}
	tx, err := p.begin(ctx, target{gen: gen, live: true})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	res, err := tx.Exec(ctx, "DELETE FROM "+parkedTable+" WHERE name = ? AND position = ?", p.def.Name, int64(e.Position))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(fmt.Errorf("projection %s: retrying position %d: %w", p.def.Name, e.Position, ErrNotParked), err)
	}
	if err := p.def.Handle(ctx, tx, e); err != nil {
		return err
	}
	return tx.Commit()
}

// DiscardParked removes the event parked at pos for good; the read model
// never sees it. The error matches ErrNotParked when nothing is parked
// at pos.
func (p *Projector) DiscardParked(ctx context.Context, pos eventstore.Position) error {
	if _, err := p.init(ctx); err != nil {
		return err
	}
	res, err := p.db.ExecContext(ctx, p.dialect.Rebind("DELETE FROM "+parkedTable+" WHERE name = ? AND position = ?"), p.def.Name, int64(pos))
	if err != nil {
		return fmt.Errorf("projection %s: discarding parked event %d: %w", p.def.Name, pos, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(fmt.Errorf("projection %s: discarding position %d: %w", p.def.Name, pos, ErrNotParked), err)
	}
	return nil
}

func (p *Projector) parkedAt(ctx context.Context, pos eventstore.Position) (ParkedEvent, error) {
	if _, err := p.init(ctx); err != nil {
		return ParkedEvent{}, err
	}
	rows, err := p.db.QueryContext(ctx, p.dialect.Rebind("SELECT position, stream, version, type, data, error, parked_at FROM "+parkedTable+" WHERE name = ? AND position = ?"), p.def.Name, int64(pos))
	if err != nil {
		return ParkedEvent{}, fmt.Errorf("projection %s: reading parked event %d: %w", p.def.Name, pos, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return ParkedEvent{}, fmt.Errorf("projection %s: reading parked event %d: %w", p.def.Name, pos, err)
		}
		return ParkedEvent{}, fmt.Errorf("projection %s: retrying position %d: %w", p.def.Name, pos, ErrNotParked)
	}
	return scanParked(rows)
}

// recorded reads the parked event from the store, or rebuilds what the
// parked row holds when the store no longer has it (retention, deletion).
func (p *Projector) recorded(ctx context.Context, pe ParkedEvent) (eventstore.RecordedEvent, error) {
	for e, err := range p.store.ReadAll(ctx, eventstore.ReadAllOptions{From: pe.Position, Until: pe.Position, Limit: 1}) {
		if err != nil {
			return eventstore.RecordedEvent{}, fmt.Errorf("projection %s: reading parked event %d from the store: %w", p.def.Name, pe.Position, err)
		}
		if e.Position == pe.Position {
			return e, nil
		}
	}
	return eventstore.RecordedEvent{Event: eventstore.Event{Type: pe.Type, Data: pe.Data}, Position: pe.Position, Stream: pe.Stream, Version: pe.Version}, nil
}
