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
// Joins read declared sources. A stream–table join (INNER or LEFT) looks
// each stream row's match up in the table's current rows; a table–table
// join (INNER, LEFT, RIGHT, FULL) matches both PRIMARY KEYs and updates the
// joined row when either side changes. JOINs chain left-deep (FROM a JOIN b
// ON … JOIN c ON …): a stream then tables, each looked up by a key computed
// from the row joined so far; or tables on one key, each ON naming the
// PRIMARY KEY of a table before it, the joins after the first INNER or LEFT
// (so each key has one joined row, retracted and replaced as any table
// changes). A stream–stream join (INNER, LEFT, RIGHT, FULL) … WITHIN d
// [GRACE PERIOD g], of two streams alone, pairs rows whose ROWTIMEs are at
// most d apart; its horizon is stream time minus d and g (0 unless given):
// rows older than it expire, a row arriving older than it is late (dropped
// and counted, as windows count theirs), and an outer join emits a row of
// its kept side that never matched, with NULLs for the other side, once the
// horizon passes it (the idle watermark moves stream time too). ON is an
// equality of a left and a right expression, or an AND of several: a
// stream–stream join matches on all of them; a join with a table needs one
// on the table's PRIMARY KEY (and for table–table, the left table's too)
// and, as SQL's ON, treats the others as a filter of the pair found, so an
// outer join keeps a row whose pair fails it with NULLs for the other side
// (a FULL table–table join takes the key equality alone: put the rest in
// WHERE).
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
