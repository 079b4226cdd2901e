// Package server serves an eventstore.Store over HTTP: the Connect service
// fjord.eventstore.v1.EventStoreService (package api), which one handler
// serves as gRPC, gRPC-Web and Connect (binary or JSON) over HTTP/1.1 and
// unencrypted HTTP/2; Server-Sent Events for browsers and curl at
// GET /v1/subscribe; and GET /healthz and GET /readyz.
//
// It is the only place where eventstore errors become status codes:
// ErrInvalid → INVALID_ARGUMENT (detail InvalidField), ErrWrongVersion →
// FAILED_PRECONDITION (detail WrongExpectedVersion with the expected and
// actual versions), ErrDuplicateMismatch → ALREADY_EXISTS (detail
// IdempotencyMismatch), ErrStreamNotFound → NOT_FOUND, ErrClosed →
// UNAVAILABLE (detail StoreClosed), context errors → CANCELED and
// DEADLINE_EXCEEDED.
//
// JSON requests with unknown fields are rejected, requests are bounded by
// Options.MaxRequestBytes, reads come in bounded pages, and subscriptions
// read from the store only as fast as the client takes them.
//
//	srv := server.New(store, &server.Options{Logger: logger})
//	ln, err := net.Listen("tcp", "127.0.0.1:7717")
//	if err != nil { … }
//	err = srv.Serve(ctx, ln) // until ctx ends; then drains and shuts down
//	store.Close()
package server
