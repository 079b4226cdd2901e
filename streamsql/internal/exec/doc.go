// Package exec executes planned streaming SQL queries over one changelog
// model: every operator consumes and produces batches of changes (insert,
// update with the old row, delete). Expressions are compiled to closures
// over rows of tagged values; a Pipeline decodes events, filters,
// aggregates (with retractions and windows) or projects, and saves and
// restores its state.
//
//	p := exec.New(q, &exec.ErrorLog{})
//	out := p.Process(events)          // changes, in order
//	out = p.Watermark(now.UnixMilli()) // windows closed by an idle input
//	p.Save(func(key string, val []byte) { … }) // state changed since the last Save
package exec
