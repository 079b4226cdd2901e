// Package projection keeps read models in a SQL database (database/sql:
// SQLite or PostgreSQL) up to date from an event store subscription. A
// Projector applies events in batches, and commits the handler's writes and
// the projection's checkpoint in one transaction, so that each event takes
// effect exactly once, across crashes and restarts.
//
//	p := projection.New(store, db, projection.Definition{
//		Name:   "order-totals",
//		Filter: eventstore.Filter{Category: "order"},
//		Tables: []string{"order_totals"},
//		Setup: func(ctx context.Context, tx *projection.Tx) error {
//			_, err := tx.Exec(ctx, "CREATE TABLE "+tx.Table("order_totals")+" (id TEXT PRIMARY KEY, total BIGINT)")
//			return err
//		},
//		Handle: func(ctx context.Context, tx *projection.Tx, e eventstore.RecordedEvent) error { … },
//	}, nil)
//	go p.Run(ctx)
//	res, _ := store.Append(ctx, "order-1", eventstore.Any, ev)
//	p.WaitFor(ctx, res.Position) // read your writes
//
// Rebuild replays the projection from the start into shadow tables while
// the live tables keep serving, then swaps them in one transaction. For
// that, Setup and Handle name every table and index through Tx.Table and
// Tx.Index, never literally.
//
// The projection's own tables are fjord_projection_checkpoints and
// fjord_projection_parked, created on first use. Events parked by the Park
// policy are listed with ListParked, applied again with RetryParked (once
// the handler is fixed) or dropped with DiscardParked.
package projection
