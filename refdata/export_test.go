package refdata

// SwapForTest stores s as the current snapshot without validation, for
// benchmarks that measure lookups during swaps.
func (r *Registry) SwapForTest(s *Snapshot) { r.cur.Store(s) }
