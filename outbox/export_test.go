package outbox

// LeaderLockKey exposes the PostgreSQL advisory lock key of r's outbox,
// for tests that kill the leader's session.
func LeaderLockKey(r *Relay) int64 { return r.leaderLockKey() }
