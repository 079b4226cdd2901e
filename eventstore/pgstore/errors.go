package pgstore

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// ErrReadOnly: the database accepts no writes (SQLSTATE 25006: a hot
// standby, or default_transaction_read_only). Nothing was written.
var ErrReadOnly = errors.New("pgstore: the database is read-only")

// describe makes a PostgreSQL error say what it means for the store:
// read-only databases get ErrReadOnly, and connection failures say so.
func describe(err error) error {
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe) && pe.Code == "25006":
		return fmt.Errorf("%w (SQLSTATE 25006): %w", ErrReadOnly, err)
	case errors.As(err, &pe):
		return err
	case pgconn.Timeout(err) || isConnectError(err):
		return fmt.Errorf("the database is unreachable: %w", err)
	}
	return err
}

func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// commitError describes an error of the commit transaction. sent tells
// whether COMMIT had been sent: a failure after that, other than an error
// reported by the server, leaves the outcome unknown.
func commitError(err error, sent bool) error {
	var pe *pgconn.PgError
	if sent && !errors.As(err, &pe) && !pgconn.SafeToRetry(err) {
		return fmt.Errorf("pgstore: commit: %w: %w", driver.ErrUnknownOutcome, err)
	}
	return fmt.Errorf("pgstore: commit: %w", describe(err))
}
