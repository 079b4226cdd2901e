package projection

import (
	"context"
	"time"

	"github.com/fjord-data/fjord/eventstore"
)

// Status is a projection's progress.
type Status struct {
	Name     string
	Running  bool
	CaughtUp bool                // Run has caught up with the log at least once
	Position eventstore.Position // the checkpoint as this Projector knows it
	Head     eventstore.Position // the event store's head
	// LagEvents is how many positions of $all lie between the checkpoint
	// and the head (for a filtered projection, an upper bound of the
	// events it has to apply).
	LagEvents uint64
	// LagTime is how long ago the oldest event the projection still has
	// to apply was committed; 0 when it has none.
	LagTime time.Duration
	// Err is the error Run ended with, if it ended.
	Err error
}

// Status reports the projection's progress and lag.
func (p *Projector) Status(ctx context.Context) (Status, error) {
	p.mu.Lock()
	st := Status{Name: p.def.Name, Running: p.mu.running, CaughtUp: p.mu.caughtUp, Position: eventstore.Position(p.applied.Load()), Err: p.mu.lastErr}
	p.mu.Unlock()
	head, err := p.store.Head(ctx)
	if err != nil {
		return st, err
	}
	st.Head = head
	if head <= st.Position {
		return st, nil
	}
	st.LagEvents = uint64(head - st.Position)
	for e, err := range p.store.ReadAll(ctx, eventstore.ReadAllOptions{From: st.Position + 1, Until: head, Limit: 1, Filter: p.def.Filter}) {
		if err != nil {
			return st, err
		}
		st.LagTime = max(0, time.Since(e.Time))
	}
	return st, nil
}

func nowNano() int64 { return time.Now().UnixNano() }
