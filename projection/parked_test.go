package projection_test

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/projection"
)

// parked lists p's parked events without their times.
func parked(t *testing.T, p *projection.Projector) []projection.ParkedEvent {
	t.Helper()
	var out []projection.ParkedEvent
	for pe, err := range p.ListParked(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if pe.ParkedAt.IsZero() {
			t.Errorf("parked event %d has no time", pe.Position)
		}
		pe.ParkedAt = time.Time{}
		out = append(out, pe)
	}
	return out
}

// TestParkedEvents parks three events a handler rejects, lists them,
// retries two (failing, then succeeding; one of them no longer in the
// store) and discards the third.
func TestParkedEvents(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		s := newStore(t)
		def := balances()
		handle := def.Handle
		var healed atomic.Bool
		def.Handle = func(ctx context.Context, tx *projection.Tx, e eventstore.RecordedEvent) error {
			if string(e.Metadata) == "poison" && !healed.Load() {
				return errors.New("poisoned")
			}
			return handle(ctx, tx, e)
		}
		for i, amount := range []int{1, 2, 4, 8, 16, 32} {
			e := deposit(amount)
			if amount == 4 || amount >= 16 {
				e.Metadata = []byte("poison")
			}
			if _, err := s.Append(ctx, "account-1", eventstore.Exact(eventstore.Version(i)), e); err != nil {
				t.Fatal(err)
			}
		}
		p := projection.New(s, db, def, &projection.Options{OnError: projection.ErrorPolicy{Then: projection.Park}})
		if got := parked(t, p); len(got) != 0 {
			t.Errorf("a new projection has parked events: %+v", got)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(runCtx) }()
		if err := p.WaitFor(ctx, 6); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
		want := []projection.ParkedEvent{
			{Position: 3, Stream: "account-1", Version: 3, Type: "Deposited", Data: deposit(4).Data, Err: "poisoned"},
			{Position: 5, Stream: "account-1", Version: 5, Type: "Deposited", Data: deposit(16).Data, Err: "poisoned"},
			{Position: 6, Stream: "account-1", Version: 6, Type: "Deposited", Data: deposit(32).Data, Err: "poisoned"},
		}
		if diff := cmp.Diff(want, parked(t, p), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("parked (-want +got):\n%s", diff)
		}

		var herr *projection.HandlerError
		if err := p.RetryParked(ctx, 3); !errors.As(err, &herr) || herr.Event.Position != 3 {
			t.Errorf("RetryParked(3) while the handler still fails = %v, want a *HandlerError at 3", err)
		}
		if diff := cmp.Diff(want, parked(t, p)); diff != "" {
			t.Errorf("after a failed retry (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]balance{"account-1": {Total: 1 + 2 + 8, Events: 3}}, readModel(t, db)); diff != "" {
			t.Errorf("read model after a failed retry (-want +got):\n%s", diff)
		}

		healed.Store(true)
		if err := p.RetryParked(ctx, 3); err != nil {
			t.Fatalf("RetryParked(3): %v", err)
		}
		// A projector of the same name over a store without the event
		// retries it from the parked copy.
		if err := projection.New(newStore(t), db, def, nil).RetryParked(ctx, 5); err != nil {
			t.Fatalf("RetryParked(5) from the parked copy: %v", err)
		}
		if err := p.DiscardParked(ctx, 6); err != nil {
			t.Fatalf("DiscardParked(6): %v", err)
		}
		if got := parked(t, p); len(got) != 0 {
			t.Errorf("parked after retry and discard: %+v", got)
		}
		if diff := cmp.Diff(map[string]balance{"account-1": {Total: 1 + 2 + 4 + 8 + 16, Events: 5}}, readModel(t, db)); diff != "" {
			t.Errorf("read model after retry and discard (-want +got):\n%s", diff)
		}
		for _, pos := range []eventstore.Position{3, 5, 6, 4} {
			if err := p.RetryParked(ctx, pos); !errors.Is(err, projection.ErrNotParked) {
				t.Errorf("RetryParked(%d) = %v, want ErrNotParked", pos, err)
			}
			if err := p.DiscardParked(ctx, pos); !errors.Is(err, projection.ErrNotParked) {
				t.Errorf("DiscardParked(%d) = %v, want ErrNotParked", pos, err)
			}
		}
	})
}
