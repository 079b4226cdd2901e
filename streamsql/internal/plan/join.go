package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// Join is the JOIN part of a plan: the input row is the left source's row
// followed by the right source's.
type Join struct {
	Kind  parse.JoinKind
	Right *Source
	// LeftKey (over the left row) must equal RightKey (over the right
	// row, with indexes relative to the right row's start).
	LeftKey, RightKey *Expr
	// RightStart is where the right row starts in the input row.
	RightStart int
	// Within is set for a stream–stream join: rows join when their
	// ROWTIMEs are at most this far apart.
	Within time.Duration
	// Tables marks a table–table join on both primary keys: its output is
	// a table keyed by that key, updated when either side changes.
	Tables bool
}

// StreamTable reports whether the right side is a table whose current
// row each left row looks up.
func (j *Join) StreamTable() bool { return j.Within == 0 && !j.Tables }

func fromClause(r parse.Relation) (*parse.SourceRef, *parse.Join, error) {
	switch r := r.(type) {
	case *parse.SourceRef:
		return r, nil, nil
	case *parse.Join:
		left, ok := r.Left.(*parse.SourceRef)
		if !ok {
			return nil, nil, errorf(r.Pos, "one JOIN per query is supported so far")
		}
		return left, r, nil
	}
	return nil, nil, errorf(r.Position(), "unsupported FROM clause")
}

// planJoin checks a join and widens the input scope to both sources.
func (q *Query) planJoin(j *parse.Join, left *parse.SourceRef, in *scope, cat Catalog) error {
	right, ok := cat.Source(j.Right.Name)
	if !ok {
		return errorf(j.Right.Pos, "unknown stream or table %s", j.Right.Name)
	}
	l := q.Source
	if l.Materialized || right.Materialized {
		return errorf(j.Pos, "joins read declared sources (CREATE STREAM|TABLE … WITH (SOURCE=…)), not materialized tables")
	}
	plan := &Join{Kind: j.Kind, Right: right, RightStart: len(q.Input), Tables: l.Table}
	switch {
	case l.Table && !right.Table:
		return errorf(j.Pos, "a table joins only a table (put the stream on the left for a stream–table join)")
	case l.Table && j.Within != nil:
		return errorf(j.Within.Pos, "a table–table join takes no WITHIN")
	case l.Table:
	case right.Table && j.Within != nil:
		return errorf(j.Within.Pos, "a stream–table join takes no WITHIN")
	case right.Table && j.Kind != parse.JoinInner && j.Kind != parse.JoinLeft:
		return errorf(j.Pos, "a stream–table join is INNER or LEFT")
	case !right.Table && j.Within == nil:
		return errorf(j.Pos, "a stream–stream join needs WITHIN")
	case !right.Table && j.Kind != parse.JoinInner:
		return errorf(j.Pos, "a stream–stream join is INNER so far")
	case !right.Table:
		plan.Within = j.Within.D()
		if plan.Within <= 0 {
			return errorf(j.Within.Pos, "WITHIN must be positive")
		}
	}
	rcols := right.RowColumns()
	in.parts = []scopePart{
		{quals: []string{left.Name, left.Alias}, start: 0, end: len(q.Input), declared: len(l.Columns)},
		{quals: []string{j.Right.Name, j.Right.Alias}, start: len(q.Input), end: len(q.Input) + len(rcols), declared: len(right.Columns)},
	}
	in.quals = append(in.quals, j.Right.Name, j.Right.Alias)
	q.Input = append(append([]types.Column{}, q.Input...), rcols...)
	in.cols = q.Input
	on, ok := j.On.(*parse.Binary)
	if !ok || on.Op != "=" {
		return errorf(j.On.Position(), "ON must be an equality of a left and a right expression")
	}
	a, err := in.bind(on.L)
	if err != nil {
		return err
	}
	b, err := in.bind(on.R)
	if err != nil {
		return err
	}
	side := func(e *Expr) int { // 0 left, 1 right, -1 both or none
		s := -1
		ok := true
		walkExpr(e, func(x *Expr) {
			if x.Op != OpCol {
				return
			}
			c := 0
			if x.Index >= plan.RightStart {
				c = 1
			}
			if s >= 0 && s != c {
				ok = false
			}
			s = c
		})
		if !ok {
			return -1
		}
		return s
	}
	if side(a) == 1 && side(b) == 0 {
		a, b = b, a
	}
	if side(a) != 0 || side(b) != 1 {
		return errorf(on.Pos, "ON must compare an expression of %s with one of %s", left.Name, j.Right.Name)
	}
	if err := comparable(on.Pos, a, b); err != nil {
		return err
	}
	if right.Table && !(b.Op == OpCol && b.Index-plan.RightStart == right.Key) {
		return errorf(on.R.Position(), "a join with a table looks rows up by the table's PRIMARY KEY %s", right.Columns[right.Key].Name)
	}
	if l.Table && !(a.Op == OpCol && a.Index == l.Key) {
		return errorf(on.L.Position(), "a table–table join matches both PRIMARY KEYs (%s of %s)", l.Columns[l.Key].Name, l.Name)
	}
	if l.Table && (a.T.Kind != b.T.Kind || a.T.Kind == types.Decimal && a.T.Scale != b.T.Scale) {
		// Rows are matched by their keys' encodings.
		return errorf(on.Pos, "a table–table join matches PRIMARY KEYs of one type (%s is %s, %s is %s)", a.Text, a.T, b.Text, b.T)
	}
	walkExpr(b, func(x *Expr) {
		if x.Op == OpCol {
			x.Index -= plan.RightStart
		}
	})
	plan.LeftKey, plan.RightKey = a, b
	q.Join = plan
	return nil
}

// joinStar expands * (both sources, columns named <source>_<column>) or
// q.* (one source, plain names) in a join.
func (q *Query) joinStar(it parse.SelectItem, sc *scope, add func(parse.Pos, string, *Expr) error) error {
	names := []string{q.Source.Name, q.Join.Right.Name}
	srcs := []*Source{q.Source, q.Join.Right}
	for i, p := range sc.parts {
		if it.Qualifier != "" && !p.qualifies(it.Qualifier) {
			continue
		}
		prefix := ""
		if it.Qualifier == "" {
			prefix = strings.ToUpper(names[i]) + "_"
			if p.quals[1] != "" {
				prefix = strings.ToUpper(p.quals[1]) + "_"
			}
		}
		for j, c := range srcs[i].Columns {
			name := prefix + c.Name
			e := &Expr{Op: OpCol, Index: p.start + j, Name: c.Name, T: c.Type, Pos: it.Pos, Text: fmt.Sprintf("%s.%s", parse.QuoteIdent(names[i]), parse.QuoteIdent(c.Name))}
			if err := add(it.Pos, name, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReadInput is what the query subscribes to: its source's input, or for
// a join one input covering both sources (the union, or $all).
func (q *Query) ReadInput() Input {
	if q.Join == nil {
		return q.Source.Input
	}
	l, r := q.Source.Input, q.Join.Right.Input
	out := Input{All: true}
	switch {
	case l.Category != "" && l.Category == r.Category:
		out = Input{Category: l.Category}
	case l.Stream != "" && l.Stream == r.Stream:
		out = Input{Stream: l.Stream}
	}
	if len(l.EventTypes) > 0 && len(r.EventTypes) > 0 {
		out.EventTypes = append(append([]string{}, l.EventTypes...), r.EventTypes...)
	}
	return out
}
