package main

import (
	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/grpcstore"
)

// openRemote returns a store that works on the event store served by
// `fjord serve` at url (--server). Closing it closes the connection only.
func openRemote(url string) (*eventstore.Store, error) {
	b, err := grpcstore.New(url, nil)
	if err != nil {
		return nil, err
	}
	return eventstore.New(b, nil), nil
}
