// Package replica keeps a local, queryable copy of another service's
// entities in a SQL table (database/sql: SQLite or PostgreSQL), from the
// changes that service publishes: each change carries an entity's whole
// state (or its deletion) and its version.
//
// Upserts are gated by version, so redelivered and reordered changes are
// harmless; deletions leave tombstones so that an older change arriving
// late cannot bring an entity back. With Options.TombstoneRetention,
// tombstones older than it are purged: a late change is then rejected only
// within the retention, since an older deletion can no longer be told from
// a key never seen. A new replica bootstraps from the
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
// store category. A replica can also be fed by the owner's pubsub topic:
// the owner publishes each change with MessageCodec.Message (the version
// travels in the "entityversion" extension), and the replica's Router
// applies them with Route. Such a replica keeps no position: create its
// subscription before taking the snapshot it bootstraps from (a Snapshot
// at position 0), and let version gating drop the changes the snapshot
// already holds.
//
//	codec := replica.MessageCodec{Source: "/crm", ChangeType: "crm.customer.changed",
//		DeleteType: "crm.customer.deleted", SubjectPrefix: "customer/"}
//	err := topic.Publish(ctx, codec.Message(replica.Change{Key: "42", Version: 7, Data: state})) // owner
//	r := replica.New(db, "customers", nil, nil)                                                   // replica
//	r.Route(router, codec, nil)
//	go router.Run(ctx)
package replica
