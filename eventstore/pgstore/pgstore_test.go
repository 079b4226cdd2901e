package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/eventstore/drivertest"
	"github.com/fjord-data/fjord/eventstore/pgstore"
)

var _ driver.Backend = (*pgstore.Store)(nil)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dsn returns the test database's DSN, or skips the test.
func dsn(t testing.TB) string {
	t.Helper()
	d := os.Getenv("FJORD_TEST_POSTGRES")
	if d == "" {
		t.Skip("FJORD_TEST_POSTGRES is not set: skipping PostgreSQL tests")
	}
	return d
}

// newPool returns a pool on the test database, closed at cleanup.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn(t))
	if err != nil {
		t.Fatalf("parsing FJORD_TEST_POSTGRES: %v", err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pgxpool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newSchema returns a fresh schema name and drops the schema at cleanup
// (registered before the stores' cleanups, so it runs after them).
func newSchema(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "fjord_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

// open opens a store in schema, closed at cleanup.
func open(t testing.TB, pool *pgxpool.Pool, opts *pgstore.Options) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(t.Context(), pool, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openFresh opens a store on a new pool and a new schema.
func openFresh(t testing.TB) *pgstore.Store {
	t.Helper()
	pool := newPool(t)
	return open(t, pool, &pgstore.Options{Schema: newSchema(t, pool)})
}

func TestConformance(t *testing.T) {
	dsn(t)
	drivertest.Run(t, func(t *testing.T) driver.Backend { return openFresh(t) })
}
