package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/pgstore"
	"github.com/fjord-data/fjord/internal/bench/pgclassic"
)

func newPgstoreCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pgstore",
		Short: "The PostgreSQL event store's schema",
		Args:  argsBetween(0, 0, ""),
	}
	cmd.AddCommand(newPgstoreMigrateCmd(a))
	return cmd
}

func newPgstoreMigrateCmd(a *app) *cobra.Command {
	var print bool
	var schema, dsn string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the event store's schema in PostgreSQL, or print its SQL",
		Long: `Create or upgrade the event store's tables in a PostgreSQL schema (what
the store does itself when it opens), or with --print write the SQL that
creates the schema from nothing, for review or to apply by hand.`,
		Example: `  fjord pgstore migrate --print --schema orders
  fjord pgstore migrate --postgres postgres://app@db/app --schema orders`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if print {
				sql, err := pgstore.MigrationSQL(schema)
				if err != nil {
					return usagef(cmd, "invalid --schema: %v", err)
				}
				_, err = fmt.Fprint(a.stdout, sql)
				return err
			}
			if dsn == "" {
				return usagef(cmd, "missing --postgres DSN (or --print)")
			}
			return a.migrate(cmd.Context(), dsn, schema)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&print, "print", false, "print the SQL instead of running it")
	fl.StringVar(&schema, "schema", "fjord", "the schema holding the event store")
	fl.StringVar(&dsn, "postgres", a.getenv("FJORD_POSTGRES"), "PostgreSQL connection string (env FJORD_POSTGRES)")
	return cmd
}

func (a *app) migrate(ctx context.Context, dsn, schema string) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("pgstore migrate: %w", err)
	}
	defer pool.Close()
	s, err := pgstore.Open(ctx, pool, &pgstore.Options{Schema: schema})
	if err != nil {
		return fmt.Errorf("pgstore migrate: %w", err)
	}
	if err := s.Close(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "schema %q is at version %d\n", schema, pgstore.SchemaVersion())
	return err
}

// pgBench opens a store per benchmark scenario in a schema of its own on
// one database, pgstore or (baseline) the classic design, and drops the
// schemas afterwards.
type pgBench struct {
	ctx      context.Context
	pool     *pgxpool.Pool
	baseline bool
	schemas  []string // created and not dropped yet
}

func newPgBench(ctx context.Context, dsn string, baseline bool) (*pgBench, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if baseline {
		cfg.MaxConns = max(cfg.MaxConns, 70) // one connection per writer: the classic design needs them
	} else {
		cfg.MaxConns = max(cfg.MaxConns, 16)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &pgBench{ctx: ctx, pool: pool, baseline: baseline}, nil
}

// open opens the store of the scenario whose directory is dir: the schema
// is named after dir, so a scenario that reopens its store finds its data.
func (p *pgBench) open(dir string) (*eventstore.Store, error) {
	h := fnv.New64a()
	h.Write([]byte(dir))
	schema := fmt.Sprintf("fjord_bench_%016x", h.Sum64())
	if len(p.schemas) == 0 || p.schemas[len(p.schemas)-1] != schema {
		p.schemas = append(p.schemas, schema)
	}
	if p.baseline {
		b, err := pgclassic.Open(p.ctx, p.pool, schema)
		if err != nil {
			return nil, err
		}
		return eventstore.New(b, &eventstore.Options{PollInterval: 10 * time.Millisecond}), nil
	}
	b, err := pgstore.Open(p.ctx, p.pool, &pgstore.Options{Schema: schema})
	if err != nil {
		return nil, err
	}
	return eventstore.New(b, nil), nil
}

// dropSchemas drops the schemas of the scenarios run so far (whose stores
// are closed).
func (p *pgBench) dropSchemas() error {
	var errs []error
	for _, s := range p.schemas {
		if _, err := p.pool.Exec(context.WithoutCancel(p.ctx), "DROP SCHEMA IF EXISTS "+s+" CASCADE"); err != nil {
			errs = append(errs, fmt.Errorf("dropping schema %s: %w", s, err))
		}
	}
	p.schemas = nil
	return errors.Join(errs...)
}

func (p *pgBench) close() error {
	err := p.dropSchemas()
	p.pool.Close()
	return err
}
