package projection

import (
	"context"
	"errors"
	"fmt"

	"github.com/fjord-data/fjord/eventstore"
)

// ErrRebuildRaced: the live generation changed while a rebuild ran (another
// rebuild swapped first). Nothing was swapped.
var ErrRebuildRaced = errors.New("projection: another rebuild swapped first")

// RebuildInfo describes a finished rebuild.
type RebuildInfo struct {
	Events     int                 // events applied to the shadow tables
	Position   eventstore.Position // the checkpoint the new read model starts from
	Generation int64
}

// Rebuild replays the projection from the start of the log into shadow
// tables (Setup runs under shadow names), catching up with the head while
// the live read model keeps serving and, if Run is going, keeps being
// updated. When the shadow tables have caught up (or the lag stops
// shrinking because writers outpace the replay), one transaction applies
// the rest up to the head it saw, renames
// them over the live tables, drops the old ones and sets the checkpoint
// to the shadow's; a running Run notices and resumes from there. Rebuild
// may run beside Run, in this process or another. The error policy applies
// to the replay as to Run.
func (p *Projector) Rebuild(ctx context.Context) (RebuildInfo, error) {
	cp, err := p.init(ctx)
	if err != nil {
		return RebuildInfo{}, err
	}
	shadow := target{suffix: shadowSuffix, gen: cp.generation + 1}
	if err := p.setupShadow(ctx, shadow); err != nil {
		return RebuildInfo{}, fmt.Errorf("projection %s: rebuild: %w", p.def.Name, err)
	}
	scp := checkpoint{generation: shadow.gen}
	info := RebuildInfo{Generation: shadow.gen}
	prevLag := ^eventstore.Position(0)
	for {
		head, err := p.store.Head(ctx)
		if err != nil {
			return info, err
		}
		lag := head - scp.position
		if lag <= eventstore.Position(p.opts.MaxBatch) || lag >= prevLag {
			// Little left, or writers append faster than the replay
			// catches up (the lag stopped shrinking): apply what is left
			// up to this head and swap in one transaction; Run applies
			// what comes after.
			return p.swap(ctx, cp.generation, shadow, scp, head, info)
		}
		prevLag = lag
		// Apply batches up to this head, then look again.
		for scp.position < head {
			events, upTo, err := p.readBatch(ctx, scp.position, head)
			if err != nil {
				return info, err
			}
			if scp, err = p.apply(ctx, shadow, scp, events, upTo); err != nil {
				return info, fmt.Errorf("projection %s: rebuild: %w", p.def.Name, err)
			}
			info.Events += len(events)
		}
	}
}

// readBatch reads up to MaxBatch events after from, up to until; upTo is
// how far the read got.
func (p *Projector) readBatch(ctx context.Context, from, until eventstore.Position) ([]eventstore.RecordedEvent, eventstore.Position, error) {
	events := make([]eventstore.RecordedEvent, 0, min(p.opts.MaxBatch, int(until-from)))
	for e, err := range p.store.ReadAll(ctx, eventstore.ReadAllOptions{From: from + 1, Until: until, Limit: p.opts.MaxBatch, Filter: p.def.Filter}) {
		if err != nil {
			return nil, 0, err
		}
		events = append(events, e)
	}
	if len(events) < p.opts.MaxBatch {
		return events, until, nil
	}
	return events, events[len(events)-1].Position, nil
}

func (p *Projector) setupShadow(ctx context.Context, shadow target) (err error) {
	tx, err := p.begin(ctx, shadow)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	for _, base := range p.def.Tables {
		if _, err := tx.Tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+base+shadowSuffix); err != nil {
			return err
		}
	}
	if p.def.Setup != nil {
		if err := p.def.Setup(ctx, tx); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	return tx.Commit()
}

// swap applies the shadow's last events up to head and swaps the shadow
// tables in, all in one transaction.
func (p *Projector) swap(ctx context.Context, liveGen int64, shadow target, scp checkpoint, head eventstore.Position, info RebuildInfo) (_ RebuildInfo, err error) {
	var events []eventstore.RecordedEvent
	for e, err := range p.store.ReadAll(ctx, eventstore.ReadAllOptions{From: scp.position + 1, Until: head, Filter: p.def.Filter}) {
		if err != nil {
			return info, err
		}
		events = append(events, e)
	}
	tx, err := p.begin(ctx, shadow)
	if err != nil {
		return info, err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			err = fmt.Errorf("projection %s: rebuild: swapping: %w", p.def.Name, err)
		}
	}()
	for _, e := range events {
		if err := p.def.Handle(ctx, tx, e); err != nil {
			return info, &HandlerError{Projection: p.def.Name, Event: e, Attempts: 1, Err: err}
		}
	}
	for _, base := range p.def.Tables {
		for _, q := range []string{
			"ALTER TABLE " + base + " RENAME TO " + base + "__old",
			"ALTER TABLE " + base + shadowSuffix + " RENAME TO " + base,
			"DROP TABLE " + base + "__old",
		} {
			if _, err := tx.Tx.ExecContext(ctx, q); err != nil {
				return info, err
			}
		}
	}
	res, err := tx.Tx.ExecContext(ctx, p.dialect.Rebind("UPDATE "+checkpointTable+" SET position = ?, generation = ?, updated_at = ? WHERE name = ? AND generation = ?"),
		int64(head), shadow.gen, nowNano(), p.def.Name, liveGen)
	if err != nil {
		return info, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return info, errors.Join(ErrRebuildRaced, err)
	}
	if err := tx.Commit(); err != nil {
		return info, err
	}
	p.stmts.reset()
	info.Events += len(events)
	info.Position = head
	return info, nil
}
