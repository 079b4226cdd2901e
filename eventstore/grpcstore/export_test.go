package grpcstore

// SetEnqueueHook makes f run after every Commit has queued its append.
// Set it before the first Commit.
func SetEnqueueHook(s *Store, f func()) { s.batch.onEnqueue = f }
