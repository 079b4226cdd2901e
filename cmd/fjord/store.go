package main

import (
	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
)

// openStore opens the event store in dataDir. It is the only place that
// chooses a backend: every command works on *eventstore.Store.
//
// For now it returns an in-memory store and ignores dataDir, so nothing
// survives the process; the durable filestore backend replaces it:
//
//	b, err := filestore.Open(dataDir, nil)
//	if err != nil {
//		return nil, err
//	}
//	return eventstore.New(b, nil), nil
func openStore(dataDir string) (*eventstore.Store, error) {
	_ = dataDir
	return eventstore.New(memstore.New(), nil), nil
}
