package pgstore_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/pgstore"
)

func appliedVersions(t *testing.T, pool *pgxpool.Pool, schema string) []int {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT version FROM "+schema+".migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func wantVersions(t *testing.T, got []int) {
	t.Helper()
	if len(got) != pgstore.SchemaVersion() || got[len(got)-1] != pgstore.SchemaVersion() {
		t.Errorf("applied versions %v, want 1..%d", got, pgstore.SchemaVersion())
	}
}

// TestMigrateFreshAndReopen: Open creates the schema; several nodes opening
// at once and reopening apply each migration once.
func TestMigrateFreshAndReopen(t *testing.T) {
	pool := newPool(t)
	schema := newSchema(t, pool)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := pgstore.Open(t.Context(), pool, &pgstore.Options{Schema: schema})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Open: %v", err)
	}
	s := open(t, pool, &pgstore.Options{Schema: schema})
	if _, err := eventstore.New(s, nil).Append(t.Context(), "order-1", eventstore.NoStream, eventstore.Event{Type: "Placed"}); err != nil {
		t.Fatal(err)
	}
	wantVersions(t, appliedVersions(t, pool, schema))
}

// TestMigrationSQL: the printed SQL, applied by hand, gives a schema that
// Open finds current.
func TestMigrationSQL(t *testing.T) {
	pool := newPool(t)
	schema := newSchema(t, pool)
	sql, err := pgstore.MigrationSQL(schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), sql); err != nil {
		t.Fatalf("applying MigrationSQL: %v", err)
	}
	open(t, pool, &pgstore.Options{Schema: schema})
	wantVersions(t, appliedVersions(t, pool, schema))
	if _, err := pgstore.MigrationSQL("Bad-Name"); err == nil {
		t.Error("MigrationSQL accepted an invalid schema name")
	}
}

// TestMigrateNewerVersion: a schema migrated by a newer build is refused
// with an error naming both versions.
func TestMigrateNewerVersion(t *testing.T) {
	pool := newPool(t)
	schema := newSchema(t, pool)
	open(t, pool, &pgstore.Options{Schema: schema}).Close()
	newer := pgstore.SchemaVersion() + 1
	if _, err := pool.Exec(t.Context(), "INSERT INTO "+schema+".migrations (version) VALUES ($1)", newer); err != nil {
		t.Fatal(err)
	}
	_, err := pgstore.Open(t.Context(), pool, &pgstore.Options{Schema: schema})
	var ve *pgstore.VersionError
	if !errors.As(err, &ve) || ve.Found != newer || ve.Supports != pgstore.SchemaVersion() {
		t.Fatalf("Open = %v, want a *VersionError for version %d", err, newer)
	}
	for _, want := range []string{strconv.Itoa(newer), strconv.Itoa(pgstore.SchemaVersion())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name version %s", err, want)
		}
	}
}

// TestReadOnly: a read-only database opens a current schema for reading,
// refuses appends with ErrReadOnly, and cannot migrate a new schema.
func TestReadOnly(t *testing.T) {
	pool := newPool(t)
	schema := newSchema(t, pool)
	open(t, pool, &pgstore.Options{Schema: schema}).Close()
	cfg, err := pgxpool.ParseConfig(dsn(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	ro, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ro.Close)
	st := eventstore.New(open(t, ro, &pgstore.Options{Schema: schema}), nil)
	_, err = st.Append(t.Context(), "order-1", eventstore.Any, eventstore.Event{Type: "Placed"})
	if !errors.Is(err, pgstore.ErrReadOnly) {
		t.Errorf("Append on a read-only database: %v, want ErrReadOnly", err)
	}
	if _, err := st.Head(t.Context()); err != nil {
		t.Errorf("Head on a read-only database: %v", err)
	}
	_, err = pgstore.Open(t.Context(), ro, &pgstore.Options{Schema: newSchema(t, pool)})
	if !errors.Is(err, pgstore.ErrReadOnly) {
		t.Errorf("Open of a new schema on a read-only database: %v, want ErrReadOnly", err)
	}
}

// TestUnreachable: Open names the problem.
func TestUnreachable(t *testing.T) {
	dsn(t)
	pool, err := pgxpool.New(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = pgstore.Open(t.Context(), pool, nil)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("Open on a closed port: %v, want an error saying the database is unreachable", err)
	}
}

// TestUnknownOutcome: when the answer to COMMIT is lost, Append reports
// ErrUnknownOutcome, and retrying with the same event IDs settles it: the
// events are in the stream exactly once.
func TestUnknownOutcome(t *testing.T) {
	pool := newPool(t)
	b := open(t, pool, &pgstore.Options{Schema: newSchema(t, pool)})
	var fail sync.Once
	pgstore.SetBeforeCommit(b, func(_ context.Context, conn *pgx.Conn) error {
		// The INSERT and COMMIT are sent; reading their answer times out.
		fail.Do(func() { conn.PgConn().Conn().SetReadDeadline(time.Now()) })
		return nil
	})
	st := eventstore.New(b, nil)
	evs := []eventstore.Event{{ID: uuid.New(), Type: "Placed"}, {ID: uuid.New(), Type: "Paid"}}
	_, err := st.Append(t.Context(), "order-1", eventstore.NoStream, evs...)
	if !errors.Is(err, eventstore.ErrUnknownOutcome) {
		t.Fatalf("Append with its answer lost: %v, want ErrUnknownOutcome", err)
	}
	res, err := st.Append(t.Context(), "order-1", eventstore.NoStream, evs...)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if res.Version != 2 || res.Position != 2 {
		t.Errorf("retry: %+v, want version 2 at position 2", res)
	}
	n := 0
	for _, err := range st.ReadStream(t.Context(), "order-1", eventstore.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("the stream has %d events, want 2", n)
	}
	t.Logf("the retry was a duplicate: %v", res.Duplicate)
}
