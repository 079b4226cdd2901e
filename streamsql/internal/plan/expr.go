package plan

import (
	"math"
	"strconv"
	"strings"

	"github.com/fjord-data/fjord/streamsql/internal/fn"
	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// Op is the operation of a bound expression.
type Op uint8

// The operations.
const (
	OpCol     Op = iota + 1 // column Index of the row
	OpConst                 // Value
	OpCall                  // scalar function Fn
	OpNeg                   // -x
	OpNot                   // NOT x
	OpAnd                   // x AND y
	OpOr                    // x OR y
	OpArith                 // Name is + - * / %
	OpConcat                // x || y
	OpCompare               // Name is = <> < <= > >=
	OpLike                  // x [NOT] LIKE pattern
	OpIn                    // x [NOT] IN (Args[1:])
	OpBetween               // x [NOT] BETWEEN Args[1] AND Args[2]
	OpIsNull                // x IS [NOT] NULL
	OpCase                  // Args: cond, then, cond, then, …, [else]; HasElse
	OpCast                  // CAST(x AS T)
	OpDeref                 // struct field Index of x
	OpIndex                 // x[i]: array (1-based, negative from the end) or map
	OpArray                 // ARRAY[…]
)

// Expr is a bound, typed expression.
type Expr struct {
	Op      Op
	Name    string
	Args    []*Expr
	Index   int
	Value   types.Value
	Not     bool
	HasElse bool
	Fn      *fn.Scalar
	T       *types.Type
	Pos     parse.Pos
	Text    string // canonical SQL, with column names resolved
}

func (e *Expr) String() string { return e.Text }

// scope resolves names while binding.
type scope struct {
	cols []types.Column
	// quals are the names (source name, alias) that may qualify a column.
	quals []string
	// parts split cols by source in a join; nil otherwise.
	parts []scopePart
	// hook, when set, is tried first on every node (aggregation rewrites).
	hook func(parse.Expr) (*Expr, bool, error)
	// aggErr is the error for an aggregate call met outside the hook.
	aggErr string
}

func (s *scope) bind(e parse.Expr) (*Expr, error) {
	if s.hook != nil {
		if b, ok, err := s.hook(e); ok || err != nil {
			return b, err
		}
	}
	switch e := e.(type) {
	case *parse.Literal:
		return literal(e)
	case *parse.ColumnRef:
		return s.column(e)
	case *parse.Unary:
		return s.unary(e)
	case *parse.Binary:
		return s.binary(e)
	case *parse.Like:
		x, p, err := s.bind2(e.X, e.Pattern)
		if err != nil {
			return nil, err
		}
		if !isKind(x.T, types.String) || !isKind(p.T, types.String) {
			return nil, errorf(e.Pos, "LIKE needs STRING operands, found %s and %s", x.T, p.T)
		}
		return &Expr{Op: OpLike, Args: []*Expr{x, p}, Not: e.Not, T: types.BooleanT, Pos: e.Pos, Text: text(e)}, nil
	case *parse.In:
		x, err := s.bind(e.X)
		if err != nil {
			return nil, err
		}
		args := []*Expr{x}
		for _, item := range e.List {
			b, err := s.bind(item)
			if err != nil {
				return nil, err
			}
			if _, ok := fn.Common(x.T, b.T); !ok {
				return nil, errorf(item.Position(), "cannot compare %s with %s", x.T, b.T)
			}
			args = append(args, b)
		}
		return &Expr{Op: OpIn, Args: args, Not: e.Not, T: types.BooleanT, Pos: e.Pos, Text: text(e)}, nil
	case *parse.Between:
		x, err := s.bind(e.X)
		if err != nil {
			return nil, err
		}
		lo, hi, err := s.bind2(e.Lo, e.Hi)
		if err != nil {
			return nil, err
		}
		for _, b := range []*Expr{lo, hi} {
			if err := comparable(b.Pos, x, b); err != nil {
				return nil, err
			}
		}
		return &Expr{Op: OpBetween, Args: []*Expr{x, lo, hi}, Not: e.Not, T: types.BooleanT, Pos: e.Pos, Text: text(e)}, nil
	case *parse.IsNull:
		x, err := s.bind(e.X)
		if err != nil {
			return nil, err
		}
		return &Expr{Op: OpIsNull, Args: []*Expr{x}, Not: e.Not, T: types.BooleanT, Pos: e.Pos, Text: text(e)}, nil
	case *parse.Case:
		return s.caseExpr(e)
	case *parse.Cast:
		return s.cast(e)
	case *parse.Call:
		return s.call(e)
	case *parse.Deref:
		x, err := s.bind(e.X)
		if err != nil {
			return nil, err
		}
		if x.T.Kind != types.Struct {
			return nil, errorf(e.Pos, "-> needs a STRUCT, found %s", x.T)
		}
		i := x.T.FieldIndex(e.Field)
		if i < 0 {
			return nil, errorf(e.Pos, "%s has no field %s", x.T, e.Field)
		}
		return &Expr{Op: OpDeref, Args: []*Expr{x}, Index: i, T: x.T.Fields[i].Type, Pos: e.Pos, Text: text(e)}, nil
	case *parse.Index:
		x, i, err := s.bind2(e.X, e.Index)
		if err != nil {
			return nil, err
		}
		switch {
		case x.T.Kind == types.Array && isKind(i.T, types.Int):
		case x.T.Kind == types.Map && isKind(i.T, types.String):
		default:
			return nil, errorf(e.Pos, "cannot index %s with %s", x.T, i.T)
		}
		return &Expr{Op: OpIndex, Args: []*Expr{x, i}, T: x.T.Elem, Pos: e.Pos, Text: text(e)}, nil
	case *parse.ArrayLit:
		out := &Expr{Op: OpArray, Pos: e.Pos, Text: text(e)}
		elem := types.NullT
		for _, x := range e.Elems {
			b, err := s.bind(x)
			if err != nil {
				return nil, err
			}
			var ok bool
			if elem, ok = fn.Common(elem, b.T); !ok {
				return nil, errorf(x.Position(), "array elements of types %s and %s", elem, b.T)
			}
			out.Args = append(out.Args, b)
		}
		if elem.Kind == types.Null {
			elem = types.StringT
		}
		for i, a := range out.Args {
			out.Args[i] = coerce(a, elem)
		}
		out.T = types.ArrayOf(elem)
		return out, nil
	}
	return nil, errorf(e.Position(), "unsupported expression %s", text(e))
}

func (s *scope) bind2(a, b parse.Expr) (*Expr, *Expr, error) {
	x, err := s.bind(a)
	if err != nil {
		return nil, nil, err
	}
	y, err := s.bind(b)
	return x, y, err
}

func text(e parse.Expr) string { return parse.ExprString(e) }

func isKind(t *types.Type, k types.Kind) bool { return t.Kind == k || t.Kind == types.Null }

func literal(e *parse.Literal) (*Expr, error) {
	out := &Expr{Op: OpConst, Pos: e.Pos, Text: text(e)}
	switch e.Kind {
	case parse.LitNull:
		out.T = types.NullT
	case parse.LitBool:
		out.Value, out.T = types.NewBool(e.Text == "TRUE"), types.BooleanT
	case parse.LitString:
		out.Value, out.T = types.NewString(e.Text), types.StringT
	case parse.LitInt:
		i, err := strconv.ParseInt(e.Text, 10, 64)
		if err != nil {
			return nil, errorf(e.Pos, "integer %s out of range", e.Text)
		}
		out.Value, out.T = types.NewInt(i), types.BigintT
		if i >= math.MinInt32 && i <= math.MaxInt32 {
			out.T = types.IntegerT
		}
	case parse.LitFloat:
		f, err := strconv.ParseFloat(e.Text, 64)
		if err != nil {
			return nil, errorf(e.Pos, "number %s out of range", e.Text)
		}
		out.Value, out.T = types.NewDouble(f), types.DoubleT
	}
	return out, nil
}

// scopePart is one source's columns, cols[start:end], in a join.
type scopePart struct {
	quals      []string
	start, end int
	declared   int // columns before the pseudo-columns
}

func (p scopePart) qualifies(q string) bool {
	for _, n := range p.quals {
		if n != "" && strings.EqualFold(n, q) {
			return true
		}
	}
	return false
}

// joinColumn resolves a column in a join: qualified, within its source;
// unqualified, in the one source that has it (pseudo-columns: the left).
func (s *scope) joinColumn(e *parse.ColumnRef) (*Expr, error) {
	var found []int
	for _, p := range s.parts {
		if e.Qualifier != "" && !p.qualifies(e.Qualifier) {
			continue
		}
		if i := columnIndex(s.cols[p.start:p.end], e.Name); i >= 0 {
			found = append(found, p.start+i)
			if e.Qualifier == "" && i >= p.declared {
				break // a pseudo-column: the left source's
			}
		}
	}
	switch {
	case len(found) == 0 && e.Qualifier != "" && !s.qualifies(e.Qualifier):
		return nil, errorf(e.Pos, "unknown source %s", e.Qualifier)
	case len(found) == 0:
		return nil, errorf(e.Pos, "unknown column %s", parse.ExprString(e))
	case len(found) > 1:
		return nil, errorf(e.Pos, "column %s is ambiguous: qualify it with its source", e.Name)
	}
	i := found[0]
	return &Expr{Op: OpCol, Index: i, Name: s.cols[i].Name, T: s.cols[i].Type, Pos: e.Pos, Text: parse.ExprString(e)}, nil
}

func (s *scope) column(e *parse.ColumnRef) (*Expr, error) {
	if s.parts != nil {
		return s.joinColumn(e)
	}
	if e.Qualifier != "" && !s.qualifies(e.Qualifier) {
		return nil, errorf(e.Pos, "unknown source %s", e.Qualifier)
	}
	i := columnIndex(s.cols, e.Name)
	if i < 0 {
		names := make([]string, len(s.cols))
		for j, c := range s.cols {
			names[j] = c.Name
		}
		return nil, errorf(e.Pos, "unknown column %s (columns: %s)", e.Name, strings.Join(names, ", "))
	}
	return &Expr{Op: OpCol, Index: i, Name: s.cols[i].Name, T: s.cols[i].Type, Pos: e.Pos, Text: parse.QuoteIdent(s.cols[i].Name)}, nil
}

func (s *scope) qualifies(q string) bool {
	for _, n := range s.quals {
		if strings.EqualFold(n, q) {
			return true
		}
	}
	return false
}

func (s *scope) unary(e *parse.Unary) (*Expr, error) {
	// The smallest BIGINT is a negated literal whose digits alone are out
	// of range.
	if lit, ok := e.X.(*parse.Literal); ok && e.Op == "-" && lit.Kind == parse.LitInt {
		if i, err := strconv.ParseInt("-"+lit.Text, 10, 64); err == nil && i == math.MinInt64 {
			return &Expr{Op: OpConst, Value: types.NewInt(i), T: types.BigintT, Pos: e.Pos, Text: text(e)}, nil
		}
	}
	x, err := s.bind(e.X)
	if err != nil {
		return nil, err
	}
	if e.Op == "NOT" {
		if !isKind(x.T, types.Bool) {
			return nil, errorf(e.Pos, "NOT needs a BOOLEAN, found %s", x.T)
		}
		return &Expr{Op: OpNot, Args: []*Expr{x}, T: types.BooleanT, Pos: e.Pos, Text: text(e)}, nil
	}
	if !x.T.Numeric() && x.T.Kind != types.Null {
		return nil, errorf(e.Pos, "cannot negate %s", x.T)
	}
	t := x.T
	if t.Kind == types.Null {
		t = types.BigintT
	}
	return &Expr{Op: OpNeg, Args: []*Expr{x}, T: t, Pos: e.Pos, Text: text(e)}, nil
}

func (s *scope) binary(e *parse.Binary) (*Expr, error) {
	l, r, err := s.bind2(e.L, e.R)
	if err != nil {
		return nil, err
	}
	out := &Expr{Name: e.Op, Args: []*Expr{l, r}, Pos: e.Pos, Text: text(e)}
	switch e.Op {
	case "AND", "OR":
		if !isKind(l.T, types.Bool) || !isKind(r.T, types.Bool) {
			return nil, errorf(e.Pos, "%s needs BOOLEAN operands, found %s and %s", e.Op, l.T, r.T)
		}
		out.Op, out.T = OpAnd, types.BooleanT
		if e.Op == "OR" {
			out.Op = OpOr
		}
	case "||":
		if !isKind(l.T, types.String) || !isKind(r.T, types.String) {
			return nil, errorf(e.Pos, "|| needs STRING operands, found %s and %s", l.T, r.T)
		}
		out.Op, out.T = OpConcat, types.StringT
	case "+", "-", "*", "/", "%":
		if (!l.T.Numeric() && l.T.Kind != types.Null) || (!r.T.Numeric() && r.T.Kind != types.Null) {
			return nil, errorf(e.Pos, "cannot apply %s to %s and %s", e.Op, l.T, r.T)
		}
		t, _ := fn.Common(l.T, r.T)
		switch {
		case t.Kind == types.Null:
			t = types.BigintT
		case t.Kind == types.Decimal && e.Op == "/":
			t = types.DoubleT // decimal division is approximate
		case t.Kind == types.Decimal:
			var ok bool
			if t, ok = fn.DecimalArith(e.Op, l.T, r.T); !ok {
				return nil, errorf(e.Pos, "%s of %s and %s needs more than %d decimals", e.Op, l.T, r.T, types.MaxDecimalPrecision)
			}
			if e.Op != "*" { // the operands take the result's scale
				l, r = coerceDecimal(l, t.Scale), coerceDecimal(r, t.Scale)
				out.Args = []*Expr{l, r}
			}
		}
		out.Op, out.T = OpArith, t
	default:
		if err := comparable(e.Pos, l, r); err != nil {
			return nil, err
		}
		out.Op, out.T = OpCompare, types.BooleanT
	}
	return out, nil
}

// comparable checks that two operands can be compared; a string constant
// compared with a TIMESTAMP is converted to one.
func comparable(p parse.Pos, l, r *Expr) error {
	for _, pair := range [][2]*Expr{{l, r}, {r, l}} {
		a, b := pair[0], pair[1]
		if a.T.Kind == types.Timestamp && b.Op == OpConst && b.T.Kind == types.String {
			ms, ok := types.ParseTimestamp(b.Value.S)
			if !ok {
				return errorf(b.Pos, "%s is not a timestamp", b.Text)
			}
			b.Value, b.T = types.NewTimestamp(ms), types.TimestampT
		}
		if a.T.Kind == types.Timestamp && b.T.Kind == types.Int {
			return nil
		}
	}
	if _, ok := fn.Common(l.T, r.T); !ok {
		return errorf(p, "cannot compare %s with %s", l.T, r.T)
	}
	if l.T.Kind == types.Map || l.T.Kind == types.Struct {
		return errorf(p, "cannot order or compare %s values", l.T)
	}
	return nil
}

func (s *scope) caseExpr(e *parse.Case) (*Expr, error) {
	out := &Expr{Op: OpCase, Pos: e.Pos, Text: text(e), HasElse: e.Else != nil}
	var operand *Expr
	if e.Operand != nil {
		var err error
		if operand, err = s.bind(e.Operand); err != nil {
			return nil, err
		}
	}
	t := types.NullT
	for _, w := range e.Whens {
		c, then, err := s.bind2(w.Cond, w.Then)
		if err != nil {
			return nil, err
		}
		if operand != nil {
			if err := comparable(c.Pos, operand, c); err != nil {
				return nil, err
			}
			c = &Expr{Op: OpCompare, Name: "=", Args: []*Expr{operand, c}, T: types.BooleanT, Pos: c.Pos, Text: operand.Text + " = " + c.Text}
		} else if !isKind(c.T, types.Bool) {
			return nil, errorf(c.Pos, "WHEN needs a BOOLEAN, found %s", c.T)
		}
		var ok bool
		if t, ok = fn.Common(t, then.T); !ok {
			return nil, errorf(then.Pos, "CASE results of types %s and %s", t, then.T)
		}
		out.Args = append(out.Args, c, then)
	}
	if e.Else != nil {
		x, err := s.bind(e.Else)
		if err != nil {
			return nil, err
		}
		var ok bool
		if t, ok = fn.Common(t, x.T); !ok {
			return nil, errorf(x.Pos, "CASE results of types %s and %s", t, x.T)
		}
		out.Args = append(out.Args, x)
	}
	if t.Kind == types.Null {
		t = types.StringT
	}
	for i := 1; i < len(out.Args); i += 2 {
		out.Args[i] = coerce(out.Args[i], t)
	}
	if e.Else != nil {
		out.Args[len(out.Args)-1] = coerce(out.Args[len(out.Args)-1], t)
	}
	out.T = t
	return out, nil
}

// coerce converts an integer or DECIMAL expression where a DOUBLE or
// another DECIMAL is expected, so that every value of an expression has
// the expression's type.
func coerce(e *Expr, t *types.Type) *Expr {
	switch {
	case e.T.Kind == types.Int && t.Kind == types.Double,
		e.T.Kind == types.Decimal && t.Kind == types.Double,
		e.T.Kind == types.Int && t.Kind == types.Decimal,
		e.T.Kind == types.Decimal && t.Kind == types.Decimal && !e.T.Equal(t):
		return &Expr{Op: OpCast, Args: []*Expr{e}, T: t, Pos: e.Pos, Text: e.Text}
	}
	return e
}

// coerceDecimal gives a DECIMAL or integer operand the scale of an
// addition's result.
func coerceDecimal(e *Expr, scale int) *Expr {
	if e.T.Kind == types.Decimal && e.T.Scale == scale {
		return e
	}
	if e.T.Kind == types.Null {
		return e
	}
	return &Expr{Op: OpCast, Args: []*Expr{e}, T: types.DecimalOf(types.MaxDecimalPrecision, scale), Pos: e.Pos, Text: e.Text}
}

func (s *scope) cast(e *parse.Cast) (*Expr, error) {
	x, err := s.bind(e.X)
	if err != nil {
		return nil, err
	}
	t, err := Type(e.Type)
	if err != nil {
		return nil, err
	}
	ok := x.T.Kind == types.Null || x.T.Equal(t) || t.Kind == types.String
	switch x.T.Kind {
	case types.String:
		ok = ok || t.Kind == types.Int || t.Kind == types.Double || t.Kind == types.Bool || t.Kind == types.Timestamp || t.Kind == types.Decimal
	case types.Int, types.Double, types.Decimal:
		ok = ok || t.Kind == types.Int || t.Kind == types.Double || t.Kind == types.Decimal || t.Kind == types.Timestamp && x.T.Kind == types.Int
	case types.Timestamp:
		ok = ok || t.Kind == types.Int
	case types.Bool:
		ok = ok || t.Kind == types.Int
	}
	if !ok {
		return nil, errorf(e.Pos, "cannot cast %s to %s", x.T, t)
	}
	return &Expr{Op: OpCast, Args: []*Expr{x}, T: t, Pos: e.Pos, Text: text(e)}, nil
}

func (s *scope) call(e *parse.Call) (*Expr, error) {
	if fn.LookupAggregate(e.Name) != nil {
		return nil, errorf(e.Pos, "%s%s", e.Name, s.aggErr)
	}
	f := fn.Lookup(e.Name)
	if f == nil {
		return nil, errorf(e.Pos, "unknown function %s", e.Name)
	}
	if e.Star {
		return nil, errorf(e.Pos, "%s(*) is not allowed", e.Name)
	}
	out := &Expr{Op: OpCall, Name: e.Name, Fn: f, Pos: e.Pos, Text: text(e)}
	var ts []*types.Type
	for _, a := range e.Args {
		b, err := s.bind(a)
		if err != nil {
			return nil, err
		}
		out.Args = append(out.Args, b)
		ts = append(ts, b.T)
	}
	t, err := f.Check(ts)
	if err != nil {
		return nil, errorf(e.Pos, "%s: %s", e.Name, strings.TrimPrefix(err.Error(), fn.ErrArgs.Error()+": "))
	}
	if f.Coerce {
		for i, a := range out.Args {
			out.Args[i] = coerce(a, t)
		}
	}
	out.T = t
	return out, nil
}
