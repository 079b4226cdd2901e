// Package streamsql runs KSQL-style streaming SQL over Fjord's event store,
// embedded in a Go program.
//
// Sources are declared over streams, categories or $all, with the JSON
// fields of event data as typed columns and ROWTIME, ROWOFFSET (the global
// position), STREAM_ID, STREAM_VERSION and EVENT_TYPE as pseudo-columns:
//
//	state, err := pebblestate.Open("data/sql", logger) // or nil State: in memory
//	e, err := streamsql.New(store, &streamsql.Options{State: state})
//	go e.Run(ctx) // runs the persistent queries
//	e.Exec(ctx, `CREATE STREAM orders (id STRING KEY, customer STRING, amount DOUBLE)
//	             WITH (SOURCE='order-')`)
//	e.Exec(ctx, `CREATE TABLE totals AS
//	             SELECT customer, COUNT(*) AS n, SUM(amount) AS total
//	             FROM orders GROUP BY customer EMIT CHANGES`)
//
//	res, _ := store.Append(ctx, "order-1", eventstore.Any, placed)
//	// Pull query, reading its own write:
//	for row, err := range e.Query(ctx, fmt.Sprintf(
//		"SELECT * FROM totals WHERE customer = 'c1' AT POSITION %d", res.Position), nil) { … }
//	// Push query: the table's rows, then every change.
//	for ch, err := range e.Query(ctx, "SELECT * FROM totals EMIT CHANGES", nil) { … }
//
// Every query's output is a changelog of inserts, updates and deletes:
// aggregations update their groups' rows, and delete a row when HAVING
// stops holding or its rows were retracted (a table source's rows change).
// Windows (TUMBLING, HOPPING, SESSION) close when stream time passes their
// end plus the GRACE PERIOD; EMIT FINAL emits their rows then, and
// RETENTION bounds how long they stay. Stream time is the largest ROWTIME
// seen; once the input has been idle for Options.IdleTimeout it moves on
// with the wall clock, so windows close without new events (and windows of
// old event-time data close only as real time passes, not all at once).
//
// Bad data never stops a query: a field that does not fit its column
// decodes as NULL, and a runtime error (division by zero, integer
// overflow, a failed CAST, a function's bad argument) makes the expression
// NULL; both are counted and the latest messages kept (Engine.Errors, SHOW
// QUERIES).
//
// CREATE TABLE … AS SELECT and CREATE STREAM … AS SELECT start persistent
// queries: their definitions survive restarts, and after every batch their
// state and input position commit together (Options.State; package
// pebblestate keeps them in Pebble), so
// a restart neither loses nor double-counts. A stream query appends its
// output to the store with event IDs derived from the input, so a batch
// appended again after a crash is a duplicate the store ignores.
package streamsql
