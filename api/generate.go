// Package api holds Fjord's server API: protobuf definitions and the Go and
// Connect code generated from them (committed). The event store service is
// fjord.eventstore.v1.EventStoreService, in fjord/eventstore/v1; streaming
// SQL is fjord.streamsql.v1.StreamSQLService, in fjord/streamsql/v1.
//
// After editing a .proto file, regenerate from this directory with
//
//	go generate ./api
//
// which runs buf (compiled by `go run` on first use, about a minute) with the
// protoc-gen-go and protoc-gen-connect-go plugins pinned as tools in go.mod.
// No system packages are needed.
package api

//go:generate go run github.com/bufbuild/buf/cmd/buf@v1.75.0 generate
