package exec

import (
	"github.com/fjord-data/fjord/streamsql/internal/plan"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// Transform runs a query's filter and projection over the changelog of a
// materialized table (pull queries and push queries on tables). It is not
// safe for concurrent use.
type Transform struct {
	q       *plan.Query
	where   Eval
	project []Eval
	emitted int64
}

// NewTransform returns the transform of q, a query without aggregation
// whose source is a materialized table.
func NewTransform(q *plan.Query, log *ErrorLog) *Transform {
	t := &Transform{q: q}
	if q.Where != nil {
		t.where = Compile(q.Where, log)
	}
	for _, e := range q.Project {
		t.project = append(t.project, Compile(e, log))
	}
	return t
}

// TableRow returns the row a query over a materialized table sees for a
// table change's row: a windowed table's rows end with WINDOWSTART and
// WINDOWEND.
func TableRow(c *Change, row []Value) []Value {
	if !c.Windowed || row == nil {
		return row
	}
	out := make([]Value, 0, len(row)+2)
	out = append(out, row...)
	return append(out, types.NewTimestamp(c.WindowStart), types.NewTimestamp(c.WindowEnd))
}

// Apply filters and projects table changes (whose rows are already
// extended by TableRow). It reuses in.
func (t *Transform) Apply(in []Change) []Change {
	if t.where != nil {
		in = filter(t.where, in)
	}
	out := project(t.project, in)
	if t.q.Limit > 0 {
		if rest := t.q.Limit - t.emitted; int64(len(out)) > rest {
			out = out[:rest]
		}
		t.emitted += int64(len(out))
	}
	return out
}

// Done reports whether the LIMIT was reached.
func (t *Transform) Done() bool { return t.q.Limit > 0 && t.emitted >= t.q.Limit }
