package main

import (
	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/filestore"
)

// openStore opens the durable event store in dataDir, creating it when it
// does not exist. It is the only place that chooses a backend: every command
// works on *eventstore.Store.
func openStore(dataDir string) (*eventstore.Store, error) {
	b, err := filestore.Open(dataDir, nil)
	if err != nil {
		return nil, err
	}
	return eventstore.New(b, nil), nil
}
