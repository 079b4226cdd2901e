package main

import (
	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/grpcstore"
)

// openRemote returns a store that works on the event store served by
// `fjord serve` at url (--server), sending token (--token) when not empty.
// Closing it closes the connection only.
func openRemote(url, token string) (*eventstore.Store, error) {
	b, err := grpcstore.New(url, &grpcstore.Options{Token: token})
	if err != nil {
		return nil, err
	}
	return eventstore.New(b, nil), nil
}
