// Package eventstore is Fjord's event store: streams of events appended with
// optimistic concurrency, a gapless global log ($all) whose order is the
// commit order, reads by stream and by filter, and subscriptions that catch
// up and then go live without a gap or a duplicate.
//
// A Store runs over a backend (package driver): memstore in memory,
// filestore embedded and durable on disk (the default), and others. Every
// backend passes the same conformance suite (package drivertest).
//
//	b, err := filestore.Open("./fjord-data", nil)
//	if err != nil { … }
//	s := eventstore.New(b, nil)
//	defer s.Close()
//	res, err := s.Append(ctx, "order-42", eventstore.NoStream,
//		eventstore.Event{Type: "OrderPlaced", Data: []byte(`{"total":42}`)})
//	for e, err := range s.ReadStream(ctx, "order-42", eventstore.ReadStreamOptions{}) { … }
//	for d, err := range s.Subscribe(ctx, eventstore.SubscribeOptions{Filter: eventstore.Filter{Category: "order"}}) { … }
//
// Store validates every request (stream names, event types, size limits)
// before anything is written and returns an *InvalidError naming the
// problem; a failed expected version is a *VersionError carrying the
// expected and actual versions.
package eventstore
