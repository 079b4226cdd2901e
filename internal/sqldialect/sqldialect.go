// Package sqldialect tells SQLite from PostgreSQL behind a database/sql
// pool, for the packages (outbox, inbox) that write the same tables on
// both.
package sqldialect

import (
	"database/sql"
	"reflect"
	"strconv"
	"strings"
)

// Dialect is a database's SQL dialect.
type Dialect uint8

// The dialects.
const (
	SQLite Dialect = iota + 1
	PostgreSQL
)

// Of returns the dialect of db's driver: PostgreSQL for pgx's (and lib/pq's)
// database/sql driver, SQLite otherwise.
func Of(db *sql.DB) Dialect {
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

// ValidIdentifier reports whether name can stand unquoted as a table name
// on both dialects: [a-z_][a-z0-9_]*, at most 48 bytes (so that suffixed
// names stay under PostgreSQL's 63).
func ValidIdentifier(name string) bool {
	if name == "" || len(name) > 48 {
		return false
	}
	for i, r := range name {
		ok := r == '_' || 'a' <= r && r <= 'z' || i > 0 && '0' <= r && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}
