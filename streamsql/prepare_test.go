package streamsql_test

import (
	"errors"
	"testing"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/streamsql"
)

func TestPrepare(t *testing.T) {
	store := eventstore.New(memstore.New(), nil)
	e := start(t, store, nil)
	defer e.stop(t)
	mustExec(t, e.Engine, ordersDDL)
	mustExec(t, e.Engine, `CREATE TABLE totals AS SELECT customer, COUNT(*) AS n FROM orders GROUP BY customer EMIT CHANGES`)
	tests := []struct {
		sql      string
		push     bool
		syntax   bool
		notFound bool
	}{
		{sql: "SELECT * FROM totals", push: false},
		{sql: "SELECT * FROM totals EMIT CHANGES", push: true},
		{sql: "SELECT id FROM orders EMIT CHANGES LIMIT 1", push: true},
		{sql: "SELECT nope FROM orders EMIT CHANGES", syntax: true},
		{sql: "SHOW TABLES", syntax: true},
		{sql: "SELEC", syntax: true},
	}
	for _, tc := range tests {
		push, err := e.Prepare(tc.sql)
		var perr *streamsql.Error
		switch {
		case tc.syntax != errors.As(err, &perr), tc.notFound != errors.Is(err, streamsql.ErrNotFound):
			t.Errorf("Prepare(%q) error = %v, want syntax %v, not found %v", tc.sql, err, tc.syntax, tc.notFound)
		case err == nil && push != tc.push:
			t.Errorf("Prepare(%q) push = %v, want %v", tc.sql, push, tc.push)
		}
	}
}
