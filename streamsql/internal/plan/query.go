package plan

import (
	"fmt"
	"strings"

	"github.com/fjord-data/fjord/streamsql/internal/fn"
	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// Query is the logical plan of a SELECT.
type Query struct {
	Text   string // canonical SQL
	Source *Source
	// Join, when set, joins a second source: Input is then the left
	// source's row followed by the right source's.
	Join   *Join
	Input  []types.Column // the source row layout
	Where  *Expr          // over Input; nil keeps every row
	Agg    *Aggregate     // nil: no aggregation
	Having *Expr          // over the aggregate row
	// Project computes the output row, over Input or, with Agg, over the
	// aggregate row.
	Project []*Expr
	Columns []types.Column // the output
	// PartitionBy re-keys a stream's output (over Input).
	PartitionBy *Expr
	Emit        parse.EmitKind
	Limit       int64 // 0: no limit
	// Pull marks a query on a materialized table that returns its current
	// rows and ends.
	Pull bool
	// PullKey, when set, is the constant the table's key must equal.
	PullKey    *types.Value
	AtPosition int64 // 0: none
	// Key is the index of the output column that holds the key (group key
	// or the source's key), or -1.
	Key int
}

// Aggregate is the GROUP BY part of a plan. The aggregate row is the
// group key values, then the aggregate results, then WINDOWSTART and
// WINDOWEND.
type Aggregate struct {
	Keys    []*Expr // over Input
	Calls   []*AggCall
	Window  *Window
	Retract bool // the input is a table: rows can be retracted
}

// AggCall is one aggregate function call.
type AggCall struct {
	Fn   *fn.Aggregate
	Args []*Expr // over Input; empty for COUNT(*)
	Star bool
	T    *types.Type
	Text string
}

// Row returns the aggregate row layout.
func (a *Aggregate) Row() []types.Column {
	var cols []types.Column
	for _, k := range a.Keys {
		cols = append(cols, types.Column{Name: k.Text, Type: k.T})
	}
	for _, c := range a.Calls {
		cols = append(cols, types.Column{Name: c.Text, Type: c.T})
	}
	return append(cols, types.Column{Name: "WINDOWSTART", Type: types.TimestampT}, types.Column{Name: "WINDOWEND", Type: types.TimestampT})
}

// Select plans a query.
func Select(sel *parse.Select, cat Catalog) (*Query, error) {
	ref, join, err := fromClause(sel.From)
	if err != nil {
		return nil, err
	}
	src, found := cat.Source(ref.Name)
	if !found {
		return nil, errorf(ref.Pos, "unknown stream or table %s", ref.Name)
	}
	q := &Query{Text: parse.String(sel), Source: src, Input: src.RowColumns(), Emit: sel.Emit, Key: -1}
	if sel.Limit != nil {
		if *sel.Limit <= 0 {
			return nil, errorf(sel.Pos, "LIMIT must be positive")
		}
		q.Limit = *sel.Limit
	}
	if sel.AtPosition != nil {
		q.AtPosition = *sel.AtPosition
	}
	q.Pull = sel.Emit == parse.EmitNone
	if q.Pull && !src.Materialized {
		return nil, errorf(sel.Pos, "%s is not a materialized table: a pull query needs a table made by CREATE TABLE … AS SELECT (or add EMIT CHANGES for a push query)", src.Name)
	}
	if !q.Pull && q.AtPosition != 0 {
		return nil, errorf(sel.Pos, "AT POSITION is for pull queries")
	}
	if q.Pull && (sel.Window != nil || len(sel.GroupBy) > 0 || len(sel.PartitionBy) > 0) {
		return nil, errorf(sel.Pos, "a pull query reads a table's current rows: no WINDOW, GROUP BY or PARTITION BY")
	}
	in := &scope{cols: q.Input, quals: []string{ref.Name, ref.Alias}, aggErr: " needs a GROUP BY"}
	if join != nil {
		if q.Pull {
			return nil, errorf(join.Pos, "a pull query reads one table: no JOIN")
		}
		if err := q.planJoin(join, ref, in, cat); err != nil {
			return nil, err
		}
	}
	if sel.Where != nil {
		in.aggErr = " is not allowed in WHERE"
		w, err := in.bind(sel.Where)
		if err != nil {
			return nil, err
		}
		if !isKind(w.T, types.Bool) {
			return nil, errorf(w.Pos, "WHERE needs a BOOLEAN, found %s", w.T)
		}
		q.Where = w
		in.aggErr = " needs a GROUP BY"
		if q.Pull {
			q.PullKey = pullKey(w, src)
		}
	}
	if len(sel.GroupBy) > 0 {
		if err := q.planAggregate(sel, in, src); err != nil {
			return nil, err
		}
	} else {
		if sel.Window != nil {
			return nil, errorf(sel.Window.Pos, "WINDOW needs a GROUP BY")
		}
		if sel.Having != nil {
			return nil, errorf(sel.Having.Position(), "HAVING needs a GROUP BY")
		}
		if err := q.project(sel, in, src); err != nil {
			return nil, err
		}
		if src.Key >= 0 {
			for i, p := range q.Project {
				if p.Op == OpCol && p.Index == src.Key {
					q.Key = i
				}
			}
		}
	}
	if len(sel.PartitionBy) > 0 {
		if q.Agg != nil || len(sel.PartitionBy) > 1 {
			return nil, errorf(sel.PartitionBy[0].Position(), "PARTITION BY takes one expression and no GROUP BY")
		}
		p, err := in.bind(sel.PartitionBy[0])
		if err != nil {
			return nil, err
		}
		q.PartitionBy = p
		q.Key = -1
	}
	if sel.Emit == parse.EmitFinal && (q.Agg == nil || q.Agg.Window == nil) {
		return nil, errorf(sel.Pos, "EMIT FINAL needs a windowed aggregation")
	}
	return q, nil
}

// pullKey finds key = constant among the conjuncts of a pull query's WHERE.
func pullKey(w *Expr, src *Source) *types.Value {
	if src.Key < 0 {
		return nil
	}
	switch w.Op {
	case OpAnd:
		if k := pullKey(w.Args[0], src); k != nil {
			return k
		}
		return pullKey(w.Args[1], src)
	case OpCompare:
		if w.Name != "=" {
			return nil
		}
		a, b := w.Args[0], w.Args[1]
		if b.Op == OpCol {
			a, b = b, a
		}
		if a.Op == OpCol && a.Index == src.Key && b.Op == OpConst && !b.Value.IsNull() && b.T.Kind == a.T.Kind {
			v := b.Value
			return &v
		}
	}
	return nil
}

// project binds the select list over scope sc.
func (q *Query) project(sel *parse.Select, sc *scope, src *Source) error {
	names := map[string]bool{}
	addCol := func(p parse.Pos, name string, e *Expr) error {
		if names[strings.ToUpper(name)] {
			return errorf(p, "duplicate output column %s (use AS to rename)", name)
		}
		names[strings.ToUpper(name)] = true
		q.Project = append(q.Project, e)
		q.Columns = append(q.Columns, types.Column{Name: name, Type: e.T})
		return nil
	}
	for i, it := range sel.Items {
		if it.Star {
			if it.Qualifier != "" && !sc.qualifies(it.Qualifier) {
				return errorf(it.Pos, "unknown source %s", it.Qualifier)
			}
			if q.Agg != nil {
				return errorf(it.Pos, "* is not allowed with GROUP BY")
			}
			if sc.parts != nil {
				if err := q.joinStar(it, sc, addCol); err != nil {
					return err
				}
				continue
			}
			for j, c := range src.Columns {
				if err := addCol(it.Pos, c.Name, &Expr{Op: OpCol, Index: j, Name: c.Name, T: c.Type, Pos: it.Pos, Text: parse.QuoteIdent(c.Name)}); err != nil {
					return err
				}
			}
			if src.Materialized && src.Window != nil {
				n := len(src.Columns)
				for j, name := range []string{"WINDOWSTART", "WINDOWEND"} {
					if err := addCol(it.Pos, name, &Expr{Op: OpCol, Index: n + j, Name: name, T: types.TimestampT, Pos: it.Pos, Text: name}); err != nil {
						return err
					}
				}
			}
			continue
		}
		e, err := sc.bind(it.Expr)
		if err != nil {
			return err
		}
		name := it.Alias
		if name == "" {
			switch x := it.Expr.(type) {
			case *parse.ColumnRef:
				name = x.Name
				if e.Op == OpCol {
					name = e.Name
				}
			case *parse.Deref:
				name = x.Field
			default:
				name = fmt.Sprintf("KSQL_COL_%d", i)
			}
		}
		if err := addCol(it.Pos, name, e); err != nil {
			return err
		}
	}
	return nil
}

func (q *Query) planAggregate(sel *parse.Select, in *scope, src *Source) error {
	agg := &Aggregate{Retract: src.Table}
	q.Agg = agg
	for _, g := range sel.GroupBy {
		k, err := in.bind(g)
		if err != nil {
			return err
		}
		if k.T.Kind == types.Map {
			return errorf(k.Pos, "cannot group by %s", k.T)
		}
		agg.Keys = append(agg.Keys, k)
	}
	if sel.Window != nil {
		if src.Table {
			return errorf(sel.Window.Pos, "windows apply to streams, and %s is a table", src.Name)
		}
		w, err := window(sel.Window)
		if err != nil {
			return err
		}
		agg.Window = w
	}
	nk := len(agg.Keys)
	out := &scope{quals: in.quals, aggErr: " cannot be nested in an aggregate"}
	out.hook = func(e parse.Expr) (*Expr, bool, error) {
		if c, ok := e.(*parse.Call); ok {
			if a := fn.LookupAggregate(c.Name); a != nil {
				return q.aggCall(c, a, in, nk)
			}
		}
		if c, ok := e.(*parse.ColumnRef); ok && (strings.EqualFold(c.Name, "WINDOWSTART") || strings.EqualFold(c.Name, "WINDOWEND")) && c.Qualifier == "" {
			if agg.Window == nil {
				return nil, true, errorf(c.Pos, "%s needs a WINDOW", strings.ToUpper(c.Name))
			}
			i := nk + len(agg.Calls)
			if strings.EqualFold(c.Name, "WINDOWEND") {
				i++
			}
			return &Expr{Op: OpCol, Index: i, Name: strings.ToUpper(c.Name), T: types.TimestampT, Pos: c.Pos, Text: strings.ToUpper(c.Name)}, true, nil
		}
		// A sub-expression equal to a group key reads the key.
		in.aggErr = " cannot be nested in an aggregate"
		b, err := in.bind(e)
		in.aggErr = " needs a GROUP BY"
		if err == nil {
			for i, k := range agg.Keys {
				if k.Text == b.Text {
					return &Expr{Op: OpCol, Index: i, Name: k.Text, T: k.T, Pos: b.Pos, Text: b.Text}, true, nil
				}
			}
		}
		if c, ok := e.(*parse.ColumnRef); ok {
			if b == nil {
				return nil, true, err
			}
			return nil, true, errorf(c.Pos, "column %s is neither in GROUP BY nor inside an aggregate", parse.ExprString(c))
		}
		return nil, false, nil
	}
	if err := q.project(sel, out, src); err != nil {
		return err
	}
	if sel.Having != nil {
		h, err := out.bind(sel.Having)
		if err != nil {
			return err
		}
		if !isKind(h.T, types.Bool) {
			return errorf(h.Pos, "HAVING needs a BOOLEAN, found %s", h.T)
		}
		q.Having = h
	}
	// Window bounds sit after the calls, whose number is known only now.
	fix := len(agg.Calls) + nk
	for _, e := range append(q.Project, q.Having) {
		walkExpr(e, func(x *Expr) {
			if x.Op == OpCol && (x.Name == "WINDOWSTART" || x.Name == "WINDOWEND") && x.Index >= nk {
				x.Index = fix
				if x.Name == "WINDOWEND" {
					x.Index++
				}
			}
		})
	}
	if len(agg.Keys) == 1 {
		for i, p := range q.Project {
			if p.Op == OpCol && p.Index == 0 {
				q.Key = i
			}
		}
	}
	return nil
}

func (q *Query) aggCall(c *parse.Call, a *fn.Aggregate, in *scope, nk int) (*Expr, bool, error) {
	call := &AggCall{Fn: a, Star: c.Star, Text: parse.ExprString(c)}
	var ts []*types.Type
	in.aggErr = " cannot be nested in an aggregate"
	defer func() { in.aggErr = " needs a GROUP BY" }()
	for _, arg := range c.Args {
		b, err := in.bind(arg)
		if err != nil {
			return nil, true, err
		}
		call.Args = append(call.Args, b)
		ts = append(ts, b.T)
	}
	t, err := a.Check(ts, c.Star)
	if err != nil {
		return nil, true, errorf(c.Pos, "%s: %s", c.Name, strings.TrimPrefix(err.Error(), fn.ErrArgs.Error()+": "))
	}
	if c.Name == "TOPK" && call.Args[1].Op != OpConst {
		return nil, true, errorf(c.Pos, "TOPK: k must be a constant")
	}
	call.T = t
	for i, prev := range q.Agg.Calls {
		if prev.Text == call.Text {
			return &Expr{Op: OpCol, Index: nk + i, T: t, Pos: c.Pos, Text: call.Text}, true, nil
		}
	}
	q.Agg.Calls = append(q.Agg.Calls, call)
	return &Expr{Op: OpCol, Index: nk + len(q.Agg.Calls) - 1, T: t, Pos: c.Pos, Text: call.Text}, true, nil
}

func walkExpr(e *Expr, f func(*Expr)) {
	if e == nil {
		return
	}
	f(e)
	for _, a := range e.Args {
		walkExpr(a, f)
	}
}

func window(w *parse.Window) (*Window, error) {
	out := &Window{Kind: w.Kind, Size: w.Size.D()}
	if out.Size <= 0 {
		return nil, errorf(w.Size.Pos, "window size must be positive")
	}
	if w.Advance != nil {
		out.Advance = w.Advance.D()
		if out.Advance <= 0 || out.Advance > out.Size {
			return nil, errorf(w.Advance.Pos, "ADVANCE BY must be positive and at most the window size")
		}
		if out.Size%out.Advance != 0 {
			return nil, errorf(w.Advance.Pos, "window size must be a multiple of ADVANCE BY")
		}
	}
	if w.Grace != nil {
		out.Grace = w.Grace.D()
	}
	out.Retention = out.Size + out.Grace
	if w.Retention != nil {
		out.Retention = w.Retention.D()
		if out.Retention < out.Size+out.Grace {
			return nil, errorf(w.Retention.Pos, "RETENTION (%s) must be at least the window size plus the grace period (%s)", out.Retention, out.Size+out.Grace)
		}
	}
	return out, nil
}
