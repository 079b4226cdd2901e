// Package pgstore is an event store backend on PostgreSQL (15 or later),
// for services that run several nodes on one database.
//
//	pool, err := pgxpool.New(ctx, "postgres://app@db/app")
//	…
//	b, err := pgstore.Open(ctx, pool, &pgstore.Options{Schema: "orders"})
//	…
//	s := eventstore.New(b, nil)
//	defer s.Close() // closes b, not the pool
//
// # Tables and migrations
//
// The store lives in one schema (Options.Schema, default "fjord"): an
// events table whose primary key is the global position, with unique
// indexes on (stream, version) and on the event ID, and indexes on
// (category, position) and (type, position) for filtered reads of $all. The
// category is a column, computed when the event is written. Open creates
// and upgrades the schema with the embedded, versioned migrations
// (migrations/NNN_*.sql) in one transaction under an advisory lock, and
// records each applied version in the schema's migrations table; a schema
// newer than this build is a *VersionError naming both versions.
// MigrationSQL prints the SQL for a DBA (fjord pgstore migrate --print).
//
// # Commit order: gapless positions with many writers and many nodes
//
// A reader of $all must never see position N+1 before N, or it skips N for
// good. A bigserial position does not give that: two transactions take 7
// and 8 from the sequence, 8 commits first, and a reader that has seen 8
// never comes back for 7. So positions are not taken from a sequence.
//
// Each Store has one committer goroutine. Commit queues the batch and
// waits; the committer takes everything queued (up to MaxGroupEvents
// events) and commits it as one transaction (group commit):
//
//  1. one round trip: BEGIN; pg_advisory_xact_lock(key of the schema);
//     read the last row's position and time (the head); read the version
//     of every stream the group touches; look up the group's event IDs
//     (except those the store generated, which cannot have committed);
//  2. in Go, each request in turn, as if committed alone after the ones
//     before it: driver.MatchDuplicate (a retry gets its original result),
//     then the expected-version checks (a *driver.ConflictError fails that
//     request only), then positions head+1… and versions;
//  3. one round trip: a single INSERT … SELECT FROM unnest(arrays) of all
//     the group's rows; pg_notify(channel, new head); COMMIT.
//
// The advisory lock is the same on every node and is held until the
// transaction ends, and PostgreSQL releases a transaction's locks only
// after its commit is visible to new snapshots. So the commit transactions
// of all nodes run one at a time, each reads the head its predecessor
// committed, and positions are assigned in commit order with no hole. A
// reader whose snapshot shows a transaction's rows also shows every row of
// the transactions before it, which became visible earlier: it cannot see
// N+1 without N. A transaction that fails writes nothing and leaves no
// hole, because nothing was taken from a sequence. Head is max(position),
// and every record at or below it is readable.
//
// # Waking subscribers
//
// Every commit transaction notifies the schema's channel with its new head;
// PostgreSQL delivers notifications only on commit, in commit order. Each
// Store listens on one connection of its own and wakes WaitHead. When
// notifications are lost (a pooler in transaction mode, a dropped listening
// connection, which is reopened), WaitHead also asks the database for the
// head every PollInterval: a lost notification adds at most that delay.
//
// # Errors
//
// An unreachable database, a read-only one (ErrReadOnly, SQLSTATE 25006)
// and a schema of an unknown version are reported by Open, and by the call
// that meets them later. When the connection fails after COMMIT was sent,
// or the caller's context ends after the committer took its batch, the
// outcome is unknown: the error wraps driver.ErrUnknownOutcome
// (eventstore.ErrUnknownOutcome). Retrying with the same event IDs settles
// it, since the retry finds the IDs if they committed.
package pgstore
