package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/aggregate"
	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// account is the state under test: a balance and the history of versions
// it was built from, so that a lost or doubled event shows.
type account struct {
	Balance  int
	Versions []eventstore.Version
}

func evolve(a account, e eventstore.RecordedEvent) account {
	var d struct{ Amount int }
	if err := json.Unmarshal(e.Data, &d); err != nil {
		panic(err)
	}
	a.Balance += d.Amount
	a.Versions = append(a.Versions, e.Version)
	return a
}

func deposit(n int) func(account) ([]eventstore.Event, error) {
	return func(account) ([]eventstore.Event, error) {
		return []eventstore.Event{{Type: "Deposited", Data: fmt.Appendf(nil, `{"amount":%d}`, n)}}, nil
	}
}

func newStore(t *testing.T) *eventstore.Store {
	s := eventstore.New(memstore.New(), nil)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConcurrentWriters(t *testing.T) {
	for _, tc := range []struct {
		name          string
		writers, each int
		snapshotEvery int
	}{
		{"no snapshots", 8, 25, 0},
		{"snapshots every 7", 8, 25, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			var mu sync.Mutex
			retries := 0
			repo := aggregate.New(s, aggregate.Definition[account]{Category: "account", Evolve: evolve},
				&aggregate.Options{MaxAttempts: 1000, SnapshotEvery: tc.snapshotEvery,
					Hooks: aggregate.Hooks{OnRetry: func(aggregate.RetryInfo) { mu.Lock(); retries++; mu.Unlock() }}})
			var wg sync.WaitGroup
			errs := make(chan error, tc.writers)
			for range tc.writers {
				wg.Go(func() {
					for range tc.each {
						if _, err := repo.Handle(ctx, "1", deposit(1)); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			got, err := repo.Load(ctx, "1")
			if err != nil {
				t.Fatal(err)
			}
			n := tc.writers * tc.each
			want := account{Balance: n}
			for v := range n {
				want.Versions = append(want.Versions, eventstore.Version(v+1))
			}
			if diff := cmp.Diff(want, got.State); diff != "" {
				t.Errorf("state after %d concurrent deposits (-want +got):\n%s", n, diff)
			}
			if got.Version != eventstore.Version(n) {
				t.Errorf("version %d, want %d", got.Version, n)
			}
			t.Logf("%d conflicts retried", retries)
		})
	}
}

func TestSnapshotLoadEqualsReplay(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	def := aggregate.Definition[account]{Category: "account", Evolve: evolve}
	snapped := aggregate.New(s, def, &aggregate.Options{SnapshotEvery: 4})
	replayed := aggregate.New(s, def, nil)
	for i := range 10 {
		if _, err := snapped.Handle(ctx, "7", deposit(i)); err != nil {
			t.Fatal(err)
		}
	}
	fromSnap, err := snapped.Load(ctx, "7")
	if err != nil {
		t.Fatal(err)
	}
	full, err := replayed.Load(ctx, "7")
	if err != nil {
		t.Fatal(err)
	}
	if fromSnap.FromSnapshot != 8 {
		t.Errorf("loaded from the snapshot at version %d, want 8", fromSnap.FromSnapshot)
	}
	full.FromSnapshot = fromSnap.FromSnapshot
	if diff := cmp.Diff(full, fromSnap); diff != "" {
		t.Errorf("snapshot load differs from full replay (-replay +snapshot):\n%s", diff)
	}
}

func TestHandleErrors(t *testing.T) {
	errNo := errors.New("insufficient funds")
	for _, tc := range []struct {
		name         string
		decide       func(s *eventstore.Store) func(account) ([]eventstore.Event, error)
		wantIs       []error
		wantAttempts int // of the ConflictError
		wantVersion  eventstore.Version
	}{
		{
			name: "decide error is returned as is",
			decide: func(*eventstore.Store) func(account) ([]eventstore.Event, error) {
				return func(account) ([]eventstore.Event, error) { return nil, errNo }
			},
			wantIs: []error{errNo},
		},
		{
			name: "every attempt conflicts",
			decide: func(s *eventstore.Store) func(account) ([]eventstore.Event, error) {
				return func(account) ([]eventstore.Event, error) {
					// Another writer appends between load and append.
					if _, err := s.Append(context.Background(), "account-1", eventstore.Any, eventstore.Event{Type: "Deposited", Data: []byte(`{"amount":1}`)}); err != nil {
						return nil, err
					}
					return deposit(1)(account{})
				}
			},
			wantIs:       []error{aggregate.ErrTooManyConflicts, eventstore.ErrWrongVersion},
			wantAttempts: 3,
			wantVersion:  3,
		},
		{
			name: "no events appends nothing",
			decide: func(*eventstore.Store) func(account) ([]eventstore.Event, error) {
				return func(account) ([]eventstore.Event, error) { return nil, nil }
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			repo := aggregate.New(s, aggregate.Definition[account]{Category: "account", Evolve: evolve}, &aggregate.Options{MaxAttempts: 3})
			_, err := repo.Handle(ctx, "1", tc.decide(s))
			for _, want := range tc.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("Handle: %v, want errors.Is %v", err, want)
				}
			}
			if len(tc.wantIs) == 0 && err != nil {
				t.Errorf("Handle: %v", err)
			}
			if ce := (*aggregate.ConflictError)(nil); errors.As(err, &ce) && ce.Attempts != tc.wantAttempts {
				t.Errorf("gave up after %d attempts, want %d", ce.Attempts, tc.wantAttempts)
			}
			l, err := repo.Load(ctx, "1")
			if err != nil {
				t.Fatal(err)
			}
			if l.Version != tc.wantVersion {
				t.Errorf("stream at version %d, want %d", l.Version, tc.wantVersion)
			}
		})
	}
}
