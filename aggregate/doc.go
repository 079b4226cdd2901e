// Package aggregate is the command side of event sourcing: load an
// aggregate's stream (from a snapshot when one exists), decide what happens,
// and append the new events with the version that was loaded as the
// expected version, retrying from a fresh load when another writer got
// there first.
//
//	accounts := aggregate.New(store, aggregate.Definition[Account]{
//		Category: "account",
//		Evolve:   func(a Account, e eventstore.RecordedEvent) Account { … },
//	}, nil)
//	res, err := accounts.Handle(ctx, "42", func(a Account) ([]eventstore.Event, error) {
//		if a.Balance < 10 { return nil, ErrInsufficientFunds }
//		return []eventstore.Event{{Type: "Withdrawn", Data: []byte(`{"amount":10}`)}}, nil
//	})
//
// A decision is retried only on eventstore.ErrWrongVersion, at most
// Options.MaxAttempts times with jittered exponential backoff; after the
// last attempt Handle returns a *ConflictError (errors.Is(err,
// ErrTooManyConflicts) and errors.Is(err, eventstore.ErrWrongVersion)).
// Errors of the decide function are returned as they are.
package aggregate
