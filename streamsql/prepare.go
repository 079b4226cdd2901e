package streamsql

import (
	"fmt"

	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
)

// Prepare checks a SELECT against the current catalog without running it,
// and reports whether it is a push query (EMIT CHANGES or EMIT FINAL): a
// server can then answer errors before it starts streaming. The errors
// are those Query would yield first (*Error, ErrNotFound); a source
// dropped between Prepare and Query still fails the Query.
func (e *Engine) Prepare(sql string) (push bool, err error) {
	stmt, err := parse.Parse(sql)
	if err != nil {
		return false, err
	}
	sel, ok := stmt.(*parse.Select)
	if !ok {
		return false, &Error{Pos: stmt.Position(), Msg: "Query runs a SELECT; use Exec for other statements"}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	q, err := plan.Select(sel, e.catalogLocked())
	if err != nil {
		return false, err
	}
	if q.Source.Materialized && e.mu.queries[q.Source.Query] == nil {
		return false, fmt.Errorf("%w: the query that materializes %s", ErrNotFound, q.Source.Name)
	}
	return !q.Pull, nil
}
