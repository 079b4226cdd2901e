package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// SetBeforeCommit makes the committer call f on its connection just before
// it sends the INSERT and COMMIT of each group; when f returns an error,
// the group's transaction is rolled back and its requests fail with it.
// Call it before any Commit.
func SetBeforeCommit(s *Store, f func(ctx context.Context, conn *pgx.Conn) error) { s.beforeCommit = f }
