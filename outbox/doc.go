// Package outbox is the transactional outbox: a service writes the
// messages it publishes into its own database, in the same transaction as
// its business rows (Enqueue), and a Relay publishes them after the
// commit. A message is published if and only if its transaction commits,
// at least once, in commit order per ordering key, even when the broker
// is down for a while (the messages wait in the outbox) or the service
// crashes between commit and publish. Consumers make the duplicates of
// at-least-once delivery harmless with package inbox.
//
// It works on SQLite and PostgreSQL through database/sql (any SQLite
// driver; pgx's stdlib driver on PostgreSQL); package outbox/pgoutbox adds
// LISTEN/NOTIFY wake-ups on PostgreSQL. On SQLite, a pool of one
// connection (db.SetMaxOpenConns(1)) serves best: writers, the relay
// among them, then queue in Go instead of sleeping in SQLite's busy
// handler; a SQLite relay holds no connection of its own.
//
//	ob, err := outbox.Open(ctx, db, nil) // creates the fjord_outbox table
//	…
//	defer ob.Close() // its prepared statements
//	tx, err := db.BeginTx(ctx, nil)
//	… // the business writes
//	err = ob.Enqueue(ctx, tx, &pubsub.Message{ID: orderID, Source: "/shop/orders",
//		Type: "shop.order.placed", Subject: "order/" + orderID, Data: body})
//	…
//	err = tx.Commit()
//
//	// Elsewhere, in every replica of the service:
//	relay := outbox.NewRelay(ob, topic, nil) // topic: a *pubsub.Topic
//	err = relay.Run(ctx)                     // until ctx ends; one replica leads
//
// # Order: commit order per key, and no row skipped
//
// Rows get an increasing sequence when they are inserted, but transactions
// commit in another order: A takes 7, B takes 8, B commits first. A relay
// that remembered "published up to 8" would skip 7 for good. This relay
// keeps no such position: it reads the outbox's first rows in sequence
// order, publishes them as one batch, and deletes exactly those rows once
// the broker took them all. A row that commits late is simply among the
// first rows of a later read. A batch that fails is published again, as a
// whole, before anything after it; rows are deleted only after their
// publish succeeded.
//
// For messages of one ordering key (pubsub.Message.OrderKey), sequence
// order is commit order: SQLite runs one writing transaction at a time,
// which holds the write lock from its first write (at the latest Enqueue's
// insert) to its end; on PostgreSQL, Enqueue takes a transaction-scoped
// advisory lock per ordering key before it inserts, so a second
// transaction enqueuing the same key waits until the first has committed
// (or rolled back), and then takes a higher sequence. Messages of
// different keys are not ordered against each other.
//
// # One leader among replicas
//
// Every replica of a service may run a Relay on the same outbox; one
// leads and publishes, the others wait. On PostgreSQL, leadership is a
// session advisory lock held by the leader's connection, on which it also
// reads and deletes: when the leader dies or its connection breaks,
// PostgreSQL releases the lock and a waiting relay takes over at once,
// while the old leader's next statement fails. On SQLite (several
// processes sharing one file), leadership is a lease row with an expiry,
// extended in every transaction that deletes published rows and checked
// before every read; a relay that dies is replaced after
// RelayOptions.LeaseTTL. A leader that loses its leadership in the middle
// of a batch may publish that batch although a new leader publishes it
// too: delivery is at least once.
//
// # Wake-up on commit
//
// The relay does not poll at a fixed delay for new rows. On SQLite,
// Enqueue wakes the relays of its Outbox in the process; a woken relay
// waits for the write lock (so for the enqueuing transaction to end) and
// reads. On PostgreSQL, Enqueue notifies the outbox's channel in the
// transaction, which PostgreSQL delivers at commit; a relay with a
// Notifier (pgoutbox.NewNotifier) listens for it. RelayOptions.PollInterval
// is the fallback for everything else: rows written by another process on
// SQLite, a lost notification.
//
// # A broker that is down
//
// When Publish fails, the batch stays in the outbox and the relay tries it
// again after a jittered exponential backoff (RelayOptions.RetryMin,
// RetryMax), for as long as it takes, keeping its leadership meanwhile;
// Hooks.OnPublishError and the Logger report each failure, and
// Outbox.Pending how many messages wait. Enqueue never talks to the
// broker: a service keeps committing while the broker is away.
package outbox
