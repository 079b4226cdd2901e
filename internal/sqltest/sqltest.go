// Package sqltest opens read-model databases for tests: SQLite always, and
// PostgreSQL (a fresh schema, dropped at cleanup) when FJORD_TEST_POSTGRES
// is set.
package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "github.com/ncruces/go-sqlite3/driver" // "sqlite3"
)

// EnvPostgres names the variable holding a PostgreSQL connection string.
const EnvPostgres = "FJORD_TEST_POSTGRES"

// SQLiteDSN returns the DSN of a SQLite database file at path, with
// immediate transactions and a busy timeout so that several connections can
// write in turn. Open puts the file in WAL mode.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_txlock=immediate&_pragma=busy_timeout(20000)&_pragma=synchronous(normal)"
}

// OpenSQLite opens the SQLite database at path and puts it in WAL mode
// once, before any other connection exists: switching the journal mode
// needs the file to itself, and connections that switch it as they open
// fail with "database is locked" when they open together.
func OpenSQLite(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", SQLiteDSN(path))
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec("PRAGMA journal_mode=wal"); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: WAL mode: %w", path, err)
	}
	return db, nil
}

// SQLite opens a new SQLite database in a temporary directory, closed at
// cleanup.
func SQLite(t testing.TB) *sql.DB {
	t.Helper()
	db, err := OpenSQLite(filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Postgres opens a connection pool whose search path is a new schema, or
// skips the test when FJORD_TEST_POSTGRES is not set.
func Postgres(t testing.TB) *sql.DB {
	t.Helper()
	schema := PostgresSchema(t)
	db, err := OpenPostgres(os.Getenv(EnvPostgres), schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresSchema creates a new schema, dropped at cleanup, and returns its
// name, or skips the test when FJORD_TEST_POSTGRES is not set.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		t.Skip(EnvPostgres + " is not set: skipping the PostgreSQL variant")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("parsing %s: %v", EnvPostgres, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "fjord_test_" + hex.EncodeToString(b)
	admin := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	return schema
}

// OpenPostgres opens a pgx database/sql pool at dsn whose search path is
// schema.
func OpenPostgres(dsn, schema string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", EnvPostgres, err)
	}
	cfg.RuntimeParams["search_path"] = schema
	return stdlib.OpenDB(*cfg), nil
}

// Each runs f as a subtest on SQLite and on PostgreSQL (skipped without
// FJORD_TEST_POSTGRES).
func Each(t *testing.T, f func(t *testing.T, db *sql.DB)) {
	t.Run("sqlite", func(t *testing.T) { f(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, Postgres(t)) })
}
