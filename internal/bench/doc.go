// Package bench measures the event store: write throughput with many
// concurrent writers, write latency, catch-up reads of $all, stream loads
// and subscription delivery latency; and, when named, the store at size:
// append rate full against empty, reopen time and memory (scale).
//
// Each scenario runs on a fresh store that the caller's Open function
// creates in a new temporary directory, so any backend plugs in:
//
//	results, err := bench.EventStore(ctx, func(dir string) (*eventstore.Store, error) {
//		b, err := filestore.Open(dir, nil)
//		if err != nil {
//			return nil, err
//		}
//		return eventstore.New(b, nil), nil
//	}, bench.Config{Scenarios: []string{"single-64w"}})
//
// Latencies are exact, not estimated: every operation's duration is kept in
// a slice allocated before the clock starts, and sorted at the end.
package bench
