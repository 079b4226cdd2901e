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
// AppendBatch carries several independent Appends (a client's group
// commit, see grpcstore): the server runs them concurrently, so that they
// join the store's group commit, and answers each with its own result or
// error (code, message and the details above). Auth is checked per item:
// an item writing a stream the token may not write fails alone with
// PERMISSION_DENIED. The call as a whole is refused only without a valid
// token, over Options.MaxRequestBytes (RESOURCE_EXHAUSTED) or over
// Options.MaxBatchAppends items (INVALID_ARGUMENT). Hooks.OnAppend runs
// once per item.
//
// With Options.Auth (ParseAuth, LoadAuthFile), every call but /healthz and
// /readyz needs a bearer token whose rules allow it: read on the stream for
// ReadStream, StreamInfo and stream subscriptions; write on every stream of
// an Append (and of each AppendBatch item); read on $all for ReadAll and $all subscriptions (or read on a
// prefix covering the filter's prefix or category, see ParseAuth); any
// valid token for Head and WatchHead; read on $all for GET /metrics. A
// missing, unknown or expired token is UNAUTHENTICATED (HTTP 401), a
// missing right PERMISSION_DENIED (403). Options.TLSConfig serves TLS;
// Options.Hooks observe appends, reads and subscriptions (package
// telemetry turns them into metrics, served from Options.Metrics), and
// SubscriberStats reports subscriber lag.
//
// With Options.SQL (a streamsql.Engine its owner runs), the server also
// serves fjord.streamsql.v1.StreamSQLService (Execute, Query, Status) and
// POST /v1/sql, whose body is one statement: a SELECT streams its changes
// as newline-delimited JSON ({"op":"insert","row":{…},"position":N}) or,
// for Accept: text/event-stream, as Server-Sent Events ("change" events,
// id the position); other statements answer one JSON object. Statements
// need write on $all (persistent queries append to the store), SHOW,
// DESCRIBE, EXPLAIN, queries and Status read on $all. Statement errors
// are INVALID_ARGUMENT with "line L, column C" (HTTP 400), unknown names
// NOT_FOUND (404), existing names ALREADY_EXISTS and dropping a source in
// use FAILED_PRECONDITION (409); a push query whose reader fell
// streamsql's SubscriberBuffer behind (ErrSlowSubscriber), or one over
// Options.MaxSQLQueries, is RESOURCE_EXHAUSTED (429). Statements are
// bounded by Options.MaxStatementBytes. Drain ends running queries with
// UNAVAILABLE, as it ends subscriptions.
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
