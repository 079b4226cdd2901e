package projection

import (
	"database/sql"

	"github.com/fjord-data/fjord/internal/sqldialect"
)

// Dialect is the SQL dialect of the read model's database.
type Dialect uint8

// The dialects.
const (
	// DetectDialect picks PostgreSQL when the database/sql driver is pgx's
	// and SQLite otherwise.
	DetectDialect Dialect = iota
	SQLite                = Dialect(sqldialect.SQLite)
	PostgreSQL            = Dialect(sqldialect.PostgreSQL)
)

func detectDialect(db *sql.DB) Dialect { return Dialect(sqldialect.Of(db)) }

// Rebind rewrites the ? placeholders of query for the dialect ($1, $2… on
// PostgreSQL). It does not look inside string literals: keep ? out of them.
func (d Dialect) Rebind(query string) string { return sqldialect.Dialect(d).Rebind(query) }

// Blob is the column type for bytes.
func (d Dialect) Blob() string { return sqldialect.Dialect(d).Blob() }

// DialectOf returns the dialect of db's driver: PostgreSQL for pgx's
// database/sql driver, SQLite otherwise.
func DialectOf(db *sql.DB) Dialect { return detectDialect(db) }
