// Package replica keeps a local, queryable copy of another service's
// entities in a SQL table (database/sql: SQLite or PostgreSQL), from the
// changes that service publishes: each change carries an entity's whole
// state (or its deletion) and its version.
//
// Upserts are gated by version, so redelivered and reordered changes are
// harmless; deletions leave tombstones so that an older change arriving
// late cannot bring an entity back. A new replica bootstraps from the
// owner's snapshot, tagged with the position it was taken at, then
// catches up from that position. Reconcile compares the replica with a
// snapshot of the owner (row count and checksum) and names the entities
// that drifted.
//
//	r := replica.New(db, "customers", &replica.CategorySource{Store: store, Category: "customer"}, nil)
//	snap, _ := replica.CategorySnapshot(ctx, store, "customer", nil)
//	r.Bootstrap(ctx, snap)
//	go r.Run(ctx)
//	row, ok, err := r.Get(ctx, "42")
//
// The input is the small Source interface: CategorySource reads an event
// store category; a messaging source can implement it as well.
package replica
