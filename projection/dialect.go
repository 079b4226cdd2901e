package projection

import (
	"database/sql"
	"reflect"
	"strconv"
	"strings"
)

// Dialect is the SQL dialect of the read model's database.
type Dialect uint8

// The dialects.
const (
	// DetectDialect picks PostgreSQL when the database/sql driver is pgx's
	// and SQLite otherwise.
	DetectDialect Dialect = iota
	SQLite
	PostgreSQL
)

func detectDialect(db *sql.DB) Dialect {
	t := reflect.TypeOf(db.Driver()).String()
	if strings.Contains(t, "stdlib") || strings.Contains(strings.ToLower(t), "pgx") || strings.Contains(t, "pq.") {
		return PostgreSQL
	}
	return SQLite
}

// Rebind rewrites the ? placeholders of query for the dialect ($1, $2… on
// PostgreSQL). It does not look inside string literals: keep ? out of them.
func (d Dialect) Rebind(query string) string {
	if d != PostgreSQL || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Blob is the column type for bytes.
func (d Dialect) Blob() string {
	if d == PostgreSQL {
		return "BYTEA"
	}
	return "BLOB"
}

// DialectOf returns the dialect of db's driver: PostgreSQL for pgx's
// database/sql driver, SQLite otherwise.
func DialectOf(db *sql.DB) Dialect { return detectDialect(db) }
