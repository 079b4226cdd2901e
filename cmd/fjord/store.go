package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/pflag"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/filestore"
	"github.com/fjord-data/fjord/eventstore/pgstore"
)

// openStore opens the durable event store in dataDir, creating it when it
// does not exist. With app.openStore it is the only place that chooses a
// backend: every command works on *eventstore.Store.
func openStore(dataDir string) (*eventstore.Store, error) {
	b, err := filestore.Open(dataDir, nil)
	if err != nil {
		return nil, err
	}
	return eventstore.New(b, nil), nil
}

// pgOpenTimeout bounds connecting to PostgreSQL and migrating the schema.
const pgOpenTimeout = 30 * time.Second

// openPostgres opens the event store in schema on the PostgreSQL database
// at dsn (pgstore), creating or migrating the schema. Closing the store
// closes its connection pool.
func openPostgres(dsn, schema string) (*eventstore.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgOpenTimeout)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	b, err := pgstore.Open(ctx, pool, &pgstore.Options{Schema: schema})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return eventstore.New(ownedPool{b, pool}, nil), nil
}

// ownedPool is a pgstore backend that closes its pool when it closes.
type ownedPool struct {
	*pgstore.Store
	pool *pgxpool.Pool
}

func (o ownedPool) Close() error {
	err := o.Store.Close()
	o.pool.Close()
	return err
}

// addPostgresFlags adds --postgres and --schema, which make the command
// work on the PostgreSQL event store instead of --data.
func addPostgresFlags(fl *pflag.FlagSet, a *app) {
	schema := a.getenv("FJORD_SCHEMA")
	if schema == "" {
		schema = "fjord"
	}
	fl.StringVar(&a.postgres, "postgres", a.getenv("FJORD_POSTGRES"),
		"keep the event store in PostgreSQL at this connection string instead of --data (env FJORD_POSTGRES)")
	fl.StringVar(&a.schema, "schema", schema, "with --postgres, the PostgreSQL schema holding the event store (env FJORD_SCHEMA)")
}

// storeAttrs describe where the store is, for logs.
func (a *app) storeAttrs() []any {
	if a.postgres != "" {
		return []any{"postgres_schema", a.schema}
	}
	return []any{"data", a.dataDir}
}

var errPostgresAndServer = errors.New("--postgres and --server both name a store: give one")

// openPostgresStore is openStore for --postgres.
func (a *app) openPostgresStore() (*eventstore.Store, error) {
	if a.serverURL != "" {
		return nil, errPostgresAndServer
	}
	s, err := openPostgres(a.postgres, a.schema)
	if err != nil {
		return nil, fmt.Errorf("opening the event store in PostgreSQL schema %q: %w", a.schema, err)
	}
	return s, nil
}
