package plan

import (
	"fmt"
	"slices"
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
	// LeftKeys[i] (over the left row) must equal RightKeys[i] (over the
	// right row, with indexes relative to the right row's start) for
	// every i: the ON clause's equalities for a stream–stream join, the
	// one on the table's PRIMARY KEY for a join with a table.
	LeftKeys, RightKeys []*Expr
	// Residual are the other equalities of ON in a join with a table,
	// over the input row: a matched pair for which one is not TRUE is no
	// match (an outer join keeps the row with NULLs for the other side).
	Residual []*Expr
	// RightStart is where the right row starts in the input row.
	RightStart int
	// Within is set for a stream–stream join: rows join when their
	// ROWTIMEs are at most this far apart.
	Within time.Duration
	// Grace is how much longer than WITHIN a stream–stream join keeps a
	// row for rows arriving out of order: stream time minus WITHIN and
	// Grace is its horizon; older rows arriving are late, and a buffered
	// row older than it is dropped (emitted with NULLs if an outer join
	// keeps its side and it never matched).
	Grace time.Duration
	// Tables marks a table–table join on both primary keys: its output is
	// a table keyed by that key, updated when either side changes.
	Tables bool
}

// StreamTable reports whether the right side is a table whose current
// row each left row looks up.
func (j *Join) StreamTable() bool { return j.Within == 0 && !j.Tables }

// fromClause returns the first source of FROM and its outermost JOIN
// (nil if none): a chain a JOIN b … JOIN c … nests to the left.
func fromClause(r parse.Relation) (*parse.SourceRef, *parse.Join, error) {
	switch r := r.(type) {
	case *parse.SourceRef:
		return r, nil, nil
	case *parse.Join:
		left, _, err := fromClause(r.Left)
		return left, r, err
	}
	return nil, nil, errorf(r.Position(), "unsupported FROM clause")
}

// planJoin plans a chain of joins, innermost first, widening the input
// scope by each right source; q.Joins lists them and q.Join is the first.
func (q *Query) planJoin(outer *parse.Join, left *parse.SourceRef, in *scope, cat Catalog) error {
	var chain []*parse.Join
	for r := parse.Relation(outer); ; {
		j, ok := r.(*parse.Join)
		if !ok {
			break
		}
		chain = append(chain, j)
		r = j.Left
	}
	slices.Reverse(chain)
	if len(chain) > 255 {
		return errorf(chain[255].Pos, "a query joins at most 256 sources")
	}
	in.parts = []scopePart{{quals: []string{left.Name, left.Alias}, start: 0, end: len(q.Input), declared: len(q.Source.Columns)}}
	for i, j := range chain {
		if err := q.planOne(j, i, left, in, cat); err != nil {
			return err
		}
	}
	q.Join = q.Joins[0]
	if len(q.Joins) > 1 {
		for _, j := range q.Joins {
			if !j.Right.Table {
				return errorf(chain[0].Pos, "a stream–stream join joins two streams alone (several JOINs chain a stream or a table with tables)")
			}
		}
	}
	return nil
}

// planOne checks join i of a chain and widens the input scope by its
// right source.
func (q *Query) planOne(j *parse.Join, i int, left *parse.SourceRef, in *scope, cat Catalog) error {
	right, ok := cat.Source(j.Right.Name)
	if !ok {
		return errorf(j.Right.Pos, "unknown stream or table %s", j.Right.Name)
	}
	l := q.Source
	if l.Materialized || right.Materialized {
		return errorf(j.Pos, "joins read declared sources (CREATE STREAM|TABLE … WITH (SOURCE=…)), not materialized tables")
	}
	plan := &Join{Kind: j.Kind, Right: right, RightStart: len(q.Input), Tables: l.Table}
	leftName := left.Name
	if i > 0 {
		leftName = "the sources joined before " + j.Right.Name
	}
	switch {
	case i > 0 && l.Table && j.Kind != parse.JoinInner && j.Kind != parse.JoinLeft:
		// A row of the right table alone could share its key with a
		// row of the chain that does not match it.
		return errorf(j.Pos, "in a chain of table–table joins, the joins after the first are INNER or LEFT")
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
	case !right.Table:
		plan.Within = j.Within.D()
		if plan.Within <= 0 {
			return errorf(j.Within.Pos, "WITHIN must be positive")
		}
		if j.Grace != nil {
			plan.Grace = j.Grace.D()
		}
	}
	rcols := right.RowColumns()
	name := func(quals []string) string { // what qualifies a source's columns
		if quals[1] != "" {
			return quals[1]
		}
		return quals[0]
	}
	for _, p := range in.parts {
		if n := name([]string{j.Right.Name, j.Right.Alias}); strings.EqualFold(name(p.quals), n) {
			return errorf(j.Right.Pos, "%s names two sources of the join: give one an alias", n)
		}
	}
	in.parts = append(in.parts, scopePart{quals: []string{j.Right.Name, j.Right.Alias}, start: len(q.Input), end: len(q.Input) + len(rcols), declared: len(right.Columns)})
	in.quals = append(in.quals, j.Right.Name, j.Right.Alias)
	q.Input = append(append([]types.Column{}, q.Input...), rcols...)
	in.cols = q.Input
	var conj []parse.Expr
	var split func(e parse.Expr)
	split = func(e parse.Expr) {
		if b, ok := e.(*parse.Binary); ok && b.Op == "AND" {
			split(b.L)
			split(b.R)
			return
		}
		conj = append(conj, e)
	}
	split(j.On)
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
	type equality struct {
		on   *parse.Binary
		a, b *Expr
	}
	var eqs []equality
	for _, c := range conj {
		on, ok := c.(*parse.Binary)
		if !ok || on.Op != "=" {
			return errorf(c.Position(), "ON must be an equality of a left and a right expression, or an AND of such equalities")
		}
		a, err := in.bind(on.L)
		if err != nil {
			return err
		}
		b, err := in.bind(on.R)
		if err != nil {
			return err
		}
		if side(a) == 1 && side(b) == 0 {
			a, b = b, a
		}
		if side(a) != 0 || side(b) != 1 {
			return errorf(on.Pos, "ON must compare an expression of %s with one of %s", leftName, j.Right.Name)
		}
		if err := comparable(on.Pos, a, b); err != nil {
			return err
		}
		eqs = append(eqs, equality{on, a, b})
	}
	if right.Table {
		// One equality looks the table's row up by its PRIMARY KEY; the
		// others filter the matched pair.
		leftKey := func(a *Expr) bool { // a PRIMARY KEY of the tables joined so far
			if a.Op != OpCol {
				return false
			}
			if a.Index == l.Key {
				return true
			}
			return slices.ContainsFunc(q.Joins, func(p *Join) bool { return a.Index == p.RightStart+p.Right.Key })
		}
		isKey := func(e equality) bool {
			return e.b.Op == OpCol && e.b.Index-plan.RightStart == right.Key && (!l.Table || leftKey(e.a))
		}
		k := slices.IndexFunc(eqs, isKey)
		if k < 0 {
			e := eqs[0]
			if l.Table && e.b.Op == OpCol && e.b.Index-plan.RightStart == right.Key {
				if i > 0 {
					return errorf(e.on.L.Position(), "a table–table join matches PRIMARY KEYs: %s is not the PRIMARY KEY of a table joined before %s", e.a.Text, j.Right.Name)
				}
				return errorf(e.on.L.Position(), "a table–table join matches both PRIMARY KEYs (%s of %s)", l.Columns[l.Key].Name, l.Name)
			}
			return errorf(e.on.R.Position(), "a join with a table looks rows up by the table's PRIMARY KEY %s", right.Columns[right.Key].Name)
		}
		for i, e := range eqs {
			if i == k {
				continue
			}
			if isKey(e) {
				return errorf(e.on.Pos, "ON compares the PRIMARY KEY %s of %s twice", right.Columns[right.Key].Name, j.Right.Name)
			}
			if l.Table && j.Kind == parse.JoinFull {
				// Two rows for one key (each side with NULLs) cannot both
				// be the joined table's row.
				return errorf(e.on.Pos, "a FULL table–table join matches the PRIMARY KEYs alone: move this condition to WHERE")
			}
			x, err := in.bind(e.on)
			if err != nil {
				return err
			}
			plan.Residual = append(plan.Residual, x)
		}
		eqs = []equality{eqs[k]}
		if a, b := eqs[0].a, eqs[0].b; l.Table && (a.T.Kind != b.T.Kind || a.T.Kind == types.Decimal && a.T.Scale != b.T.Scale) {
			// Rows are matched by their keys' encodings.
			return errorf(eqs[0].on.Pos, "a table–table join matches PRIMARY KEYs of one type (%s is %s, %s is %s)", a.Text, a.T, b.Text, b.T)
		}
	}
	for _, e := range eqs {
		walkExpr(e.b, func(x *Expr) {
			if x.Op == OpCol {
				x.Index -= plan.RightStart
			}
		})
		plan.LeftKeys, plan.RightKeys = append(plan.LeftKeys, e.a), append(plan.RightKeys, e.b)
	}
	q.Joins = append(q.Joins, plan)
	return nil
}

// joinStar expands * (both sources, columns named <source>_<column>) or
// q.* (one source, plain names) in a join.
func (q *Query) joinStar(it parse.SelectItem, sc *scope, add func(parse.Pos, string, *Expr) error) error {
	names := []string{q.Source.Name}
	srcs := []*Source{q.Source}
	for _, j := range q.Joins {
		names, srcs = append(names, j.Right.Name), append(srcs, j.Right)
	}
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
	l := q.Source.Input
	sameCat, sameStream, types := l.Category != "", l.Stream != "", len(l.EventTypes) > 0
	for _, j := range q.Joins {
		r := j.Right.Input
		sameCat = sameCat && r.Category == l.Category
		sameStream = sameStream && r.Stream == l.Stream
		types = types && len(r.EventTypes) > 0
	}
	out := Input{All: true}
	switch {
	case sameCat:
		out = Input{Category: l.Category}
	case sameStream:
		out = Input{Stream: l.Stream}
	}
	if types {
		out.EventTypes = append([]string{}, l.EventTypes...)
		for _, j := range q.Joins {
			out.EventTypes = append(out.EventTypes, j.Right.Input.EventTypes...)
		}
	}
	return out
}
