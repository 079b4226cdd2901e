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
// category is a column, computed when the event is written. Stream,
// category and type compare byte by byte (COLLATE "C"). The function
// check_head serves optimistic commits (below). Open creates and upgrades
// the schema with the embedded, versioned migrations
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
// events) and commits it as one transaction (group commit). It reads, in
// one round trip, the last row's position and time (the head), the version
// of every stream the group touches and the group's event IDs (except
// those the store generated, which cannot have committed); decides in Go
// each request in turn, as if committed alone after the ones before it
// (driver.MatchDuplicate gives a retry its original result, a failed
// expected version fails that request only with a *driver.ConflictError,
// the others get positions head+1… and versions); and writes all the
// group's rows with a single INSERT … SELECT FROM unnest(arrays), notifies
// the schema's channel with the new head and commits, in a second round
// trip. One advisory lock per schema, the same on every node and held
// until the transaction ends, is the commit lock; PostgreSQL releases a
// transaction's locks only after its commit is visible to new snapshots.
// A transaction commits in one of two ways:
//
//   - Locked, while other nodes commit too: it takes the commit lock before
//     it reads the head. So the commit transactions of all nodes run one
//     at a time, and each reads the head its predecessor committed.
//   - Optimistic, while the node commits alone (it has seen no other
//     node's commit for a second): it reads without the commit lock,
//     writes its rows after the head it read (or after the rows of its
//     own transaction still in progress), and only then calls
//     check_head, which takes the commit lock without waiting and fails
//     the transaction (SQLSTATE FJ001) unless the last committed row is at
//     first-1. While one group's transaction commits, the committer
//     already reads, decides and writes the next group (on a second
//     connection, after the first group's rows), so row writing, the
//     expensive part, overlaps the previous commit; the next transaction
//     waits for an advisory lock the previous one holds (its "slot")
//     before its check, so they commit in order. At most two transactions
//     of a node are in progress, and a request touching a stream of the
//     one in progress waits for the next group.
//
// Either way, rows at positions first…last commit only if, under the
// commit lock, every position before first is committed: a row someone
// else committed at one of them would have been a unique violation of the
// primary key (writing it waits for a transaction in progress that has
// it), and the locked path reads the head under the lock. So positions are
// assigned in commit order with no hole. A reader whose snapshot shows a
// transaction's rows also shows every row of the transactions before it,
// which became visible earlier: it cannot see N+1 without N. The unique
// (stream, version) and event-ID indexes likewise catch an optimistic
// transaction whose streams or IDs another node wrote after it read them.
// A transaction that fails (a race: the check, a unique violation, a
// deadlock PostgreSQL broke) writes nothing and leaves no hole, because
// nothing was taken from a sequence; its requests are decided and written
// again, locked. Optimistic transactions of several nodes at once would
// mostly fail their check, and could deadlock (PostgreSQL breaks the cycle
// after deadlock_timeout, and the loser is retried): so a node that sees
// another node's commit commits locked for the next second. Head is
// max(position), and every record at or below it is readable.
//
// Nodes of an older build (schema version 1, every commit locked) keep the
// same invariant and may run beside newer ones during a rolling upgrade;
// once the schema is migrated, older builds refuse to open it.
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
