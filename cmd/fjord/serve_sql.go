package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/streamsql"
	"github.com/fjord-data/fjord/streamsql/pebblestate"
)

// serveSQLFlags configure the streaming SQL engine of `fjord serve`.
type serveSQLFlags struct {
	enabled bool
}

const serveSQLHelp = `
Streaming SQL runs in the server (unless --sql=false): Connect service
fjord.streamsql.v1.StreamSQLService, and POST /v1/sql with the statement
as the body (a SELECT streams newline-delimited JSON, or Server-Sent
Events with Accept: text/event-stream). Definitions and the state of
persistent queries live in <data>/sql and survive restarts.
`

func (f *serveSQLFlags) register(fl *pflag.FlagSet, getenv func(string) string) {
	def := true
	if v, err := strconv.ParseBool(getenv("FJORD_SQL")); err == nil {
		def = v
	}
	fl.BoolVar(&f.enabled, "sql", def, "run the streaming SQL engine and serve its API, with its state in <data>/sql (env FJORD_SQL)")
}

// open opens the engine over st with its state in dataDir/sql, or
// returns nil when SQL is off. Its owner runs it and closes it after Run.
func (f *serveSQLFlags) open(st *eventstore.Store, dataDir string, logger *slog.Logger) (*streamsql.Engine, error) {
	if !f.enabled {
		return nil, nil
	}
	dir := filepath.Join(dataDir, "sql")
	state, err := pebblestate.Open(dir, logger.With("component", "sql"))
	if err != nil {
		return nil, fmt.Errorf("opening the SQL state in %s: %w", dir, err)
	}
	e, err := streamsql.New(st, &streamsql.Options{State: state, Logger: logger.With("component", "sql")})
	if err != nil {
		return nil, fmt.Errorf("starting streaming SQL: %w", err)
	}
	return e, nil
}

// runSQL runs e until ctx ends (nothing when e is nil).
func runSQL(ctx context.Context, e *streamsql.Engine) error {
	if e == nil {
		return nil
	}
	return e.Run(ctx)
}
