// Package pebblestate keeps a streamsql engine's definitions and the state
// of its persistent queries in Pebble, so that they survive restarts: each
// query's state entries and input position commit in one batch.
//
//	st, err := pebblestate.Open("data/sql", logger)
//	e, err := streamsql.New(store, &streamsql.Options{State: st}) // e.Close closes st
package pebblestate
