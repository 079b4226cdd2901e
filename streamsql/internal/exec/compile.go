package exec

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/fjord-data/fjord/streamsql/internal/plan"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// Value is the value model's value.
type Value = types.Value

// Eval computes an expression over a row.
type Eval func(row []Value) Value

// Compile turns a bound expression into a closure. Runtime errors make
// the expression's value NULL and are counted in log.
func Compile(e *plan.Expr, log *ErrorLog) Eval {
	c := compiler{log: log}
	return c.compile(e)
}

type compiler struct{ log *ErrorLog }

func (c *compiler) fail(e *plan.Expr, format string, args ...any) {
	c.log.addRuntime(fmt.Sprintf("line %d, column %d: %s: %s", e.Pos.Line, e.Pos.Col, e.Text, fmt.Sprintf(format, args...)))
}

func (c *compiler) compile(e *plan.Expr) Eval {
	switch e.Op {
	case plan.OpCol:
		i := e.Index
		return func(r []Value) Value { return r[i] }
	case plan.OpConst:
		v := e.Value
		return func([]Value) Value { return v }
	case plan.OpNeg:
		x := c.compile(e.Args[0])
		return func(r []Value) Value {
			v := x(r)
			switch v.K {
			case types.Int:
				if v.I == math.MinInt64 || !intFits(-v.I, e.T) {
					c.fail(e, "integer overflow: result out of range for %s", e.T)
					return Value{}
				}
				return types.NewInt(-v.I)
			case types.Double:
				return types.NewDouble(-v.F)
			case types.Decimal:
				return types.NewDecimal(-v.I, int(v.Sc))
			}
			return Value{}
		}
	case plan.OpNot:
		x := c.compile(e.Args[0])
		return func(r []Value) Value {
			v := x(r)
			if v.IsNull() {
				return v
			}
			return types.NewBool(!v.Bool())
		}
	case plan.OpAnd, plan.OpOr:
		return c.logic(e)
	case plan.OpArith:
		return c.arith(e)
	case plan.OpConcat:
		l, r := c.compile(e.Args[0]), c.compile(e.Args[1])
		return func(row []Value) Value {
			a, b := l(row), r(row)
			if a.IsNull() || b.IsNull() {
				return Value{}
			}
			return types.NewString(a.S + b.S)
		}
	case plan.OpCompare:
		return c.compare(e)
	case plan.OpLike:
		return c.like(e)
	case plan.OpIn:
		return c.in(e)
	case plan.OpBetween:
		x, lo, hi := c.compile(e.Args[0]), c.compile(e.Args[1]), c.compile(e.Args[2])
		not := e.Not
		return func(r []Value) Value {
			v, a, b := x(r), lo(r), hi(r)
			if v.IsNull() || a.IsNull() || b.IsNull() {
				return Value{}
			}
			in := types.Compare(v, a) >= 0 && types.Compare(v, b) <= 0
			return types.NewBool(in != not)
		}
	case plan.OpIsNull:
		x, not := c.compile(e.Args[0]), e.Not
		return func(r []Value) Value { return types.NewBool(x(r).IsNull() != not) }
	case plan.OpCase:
		return c.caseExpr(e)
	case plan.OpCast:
		return c.cast(e)
	case plan.OpCall:
		return c.call(e)
	case plan.OpDeref:
		x, i := c.compile(e.Args[0]), e.Index
		return func(r []Value) Value {
			l := x(r).List()
			if i < len(l) {
				return l[i]
			}
			return Value{}
		}
	case plan.OpIndex:
		return c.index(e)
	case plan.OpArray:
		elems := c.all(e.Args)
		return func(r []Value) Value {
			out := make([]Value, len(elems))
			for i, f := range elems {
				out[i] = f(r)
			}
			return types.NewArray(out)
		}
	}
	panic(fmt.Sprintf("exec: unknown operation %d", e.Op))
}

func (c *compiler) all(es []*plan.Expr) []Eval {
	out := make([]Eval, len(es))
	for i, a := range es {
		out[i] = c.compile(a)
	}
	return out
}

// logic is three-valued AND/OR.
func (c *compiler) logic(e *plan.Expr) Eval {
	l, r := c.compile(e.Args[0]), c.compile(e.Args[1])
	if e.Op == plan.OpAnd {
		return func(row []Value) Value {
			a := l(row)
			if a.K == types.Bool && a.I == 0 {
				return a
			}
			b := r(row)
			switch {
			case b.K == types.Bool && b.I == 0:
				return b
			case a.IsNull() || b.IsNull():
				return Value{}
			}
			return b
		}
	}
	return func(row []Value) Value {
		a := l(row)
		if a.Bool() {
			return a
		}
		b := r(row)
		switch {
		case b.Bool():
			return b
		case a.IsNull() || b.IsNull():
			return Value{}
		}
		return b
	}
}

func (c *compiler) arith(e *plan.Expr) Eval {
	l, r := c.compile(e.Args[0]), c.compile(e.Args[1])
	op := e.Name[0]
	if e.T.Kind == types.Decimal {
		return c.decimalArith(e, l, r, op)
	}
	if e.T.Kind == types.Double {
		return func(row []Value) Value {
			a, b := l(row), r(row)
			if a.IsNull() || b.IsNull() {
				return Value{}
			}
			x, y := a.AsFloat(), b.AsFloat()
			switch op {
			case '+':
				return types.NewDouble(x + y)
			case '-':
				return types.NewDouble(x - y)
			case '*':
				return types.NewDouble(x * y)
			}
			if y == 0 {
				c.fail(e, "division by zero")
				return Value{}
			}
			if op == '/' {
				return types.NewDouble(x / y)
			}
			return types.NewDouble(math.Mod(x, y))
		}
	}
	return func(row []Value) Value {
		a, b := l(row), r(row)
		if a.IsNull() || b.IsNull() {
			return Value{}
		}
		x, y := a.I, b.I
		var res int64
		overflow := false
		switch op {
		case '+':
			res = x + y
			overflow = (x > 0 && y > 0 && res < 0) || (x < 0 && y < 0 && res >= 0)
		case '-':
			res = x - y
			overflow = (x >= 0 && y < 0 && res < 0) || (x < 0 && y > 0 && res >= 0)
		case '*':
			res = x * y
			overflow = x != 0 && (res/x != y || x == -1 && y == math.MinInt64)
		default:
			switch {
			case y == 0:
				c.fail(e, "division by zero")
				return Value{}
			case y == -1 && op == '/':
				res, overflow = -x, x == math.MinInt64
			case y == -1:
				res = 0
			case op == '/':
				res = x / y
			default:
				res = x % y
			}
		}
		if overflow || !intFits(res, e.T) {
			c.fail(e, "integer overflow: result out of range for %s", e.T)
			return Value{}
		}
		return types.NewInt(res)
	}
}

// intFits reports whether an integer result fits its type (INTEGER is 32
// bits).
func intFits(v int64, t *types.Type) bool {
	return !t.Narrow || v >= math.MinInt32 && v <= math.MaxInt32
}

// decimalArith computes DECIMAL + - * %: the planner gave the operands of
// + - % the result's scale; * multiplies the unscaled values and adds the
// scales. A result beyond the type's precision is NULL and an error.
func (c *compiler) decimalArith(e *plan.Expr, l, r Eval, op byte) Eval {
	limit := uint64(1)
	for range e.T.Precision {
		limit *= 10
	}
	scale := e.T.Scale
	return func(row []Value) Value {
		a, b := l(row), r(row)
		if a.IsNull() || b.IsNull() {
			return Value{}
		}
		var res int64
		overflow := false
		switch op {
		case '+':
			res = a.I + b.I
			overflow = (a.I > 0 && b.I > 0 && res < 0) || (a.I < 0 && b.I < 0 && res >= 0)
		case '-':
			res = a.I - b.I
			overflow = (a.I >= 0 && b.I < 0 && res < 0) || (a.I < 0 && b.I > 0 && res >= 0)
		case '*':
			hi, lo := bits.Mul64(absU(a.I), absU(b.I))
			overflow = hi != 0 || lo > math.MaxInt64
			res = int64(lo)
			if (a.I < 0) != (b.I < 0) {
				res = -res
			}
		default:
			if b.I == 0 {
				c.fail(e, "division by zero")
				return Value{}
			}
			res = a.I % b.I
		}
		if overflow || absU(res) >= limit {
			c.fail(e, "result out of range for %s", e.T)
			return Value{}
		}
		return types.NewDecimal(res, scale)
	}
}

func absU(i int64) uint64 {
	if i < 0 {
		return uint64(-(i + 1)) + 1
	}
	return uint64(i)
}

func (c *compiler) compare(e *plan.Expr) Eval {
	l, r := c.compile(e.Args[0]), c.compile(e.Args[1])
	var test func(int) bool
	switch e.Name {
	case "=":
		test = func(x int) bool { return x == 0 }
	case "<>":
		test = func(x int) bool { return x != 0 }
	case "<":
		test = func(x int) bool { return x < 0 }
	case "<=":
		test = func(x int) bool { return x <= 0 }
	case ">":
		test = func(x int) bool { return x > 0 }
	default:
		test = func(x int) bool { return x >= 0 }
	}
	// Fast paths for the common shapes.
	if e.Args[1].Op == plan.OpConst && e.Args[0].T.Kind == types.String && e.Args[1].T.Kind == types.String {
		k := e.Args[1].Value.S
		return func(row []Value) Value {
			a := l(row)
			if a.IsNull() {
				return Value{}
			}
			return types.NewBool(test(strings.Compare(a.S, k)))
		}
	}
	return func(row []Value) Value {
		a, b := l(row), r(row)
		if a.IsNull() || b.IsNull() {
			return Value{}
		}
		return types.NewBool(test(types.Compare(a, b)))
	}
}

func (c *compiler) in(e *plan.Expr) Eval {
	x, list, not := c.compile(e.Args[0]), c.all(e.Args[1:]), e.Not
	return func(r []Value) Value {
		v := x(r)
		if v.IsNull() {
			return Value{}
		}
		sawNull := false
		for _, f := range list {
			w := f(r)
			if w.IsNull() {
				sawNull = true
				continue
			}
			if types.Compare(v, w) == 0 {
				return types.NewBool(!not)
			}
		}
		if sawNull {
			return Value{}
		}
		return types.NewBool(not)
	}
}

func (c *compiler) caseExpr(e *plan.Expr) Eval {
	args := c.all(e.Args)
	n := len(args)
	var els Eval
	if e.HasElse {
		els = args[n-1]
		n--
	}
	return func(r []Value) Value {
		for i := 0; i+1 < n; i += 2 {
			if args[i](r).Bool() {
				return args[i+1](r)
			}
		}
		if els != nil {
			return els(r)
		}
		return Value{}
	}
}

func (c *compiler) index(e *plan.Expr) Eval {
	x, i := c.compile(e.Args[0]), c.compile(e.Args[1])
	if e.Args[0].T.Kind == types.Map {
		return func(r []Value) Value {
			k := i(r)
			if k.IsNull() {
				return Value{}
			}
			return x(r).MapValue()[k.S]
		}
	}
	return func(r []Value) Value {
		l, k := x(r).List(), i(r)
		if k.IsNull() {
			return Value{}
		}
		n := k.I
		if n < 0 {
			n = int64(len(l)) + n + 1
		}
		if n < 1 || n > int64(len(l)) {
			return Value{}
		}
		return l[n-1]
	}
}

// like matches SQL patterns: % any run, _ one character.
func (c *compiler) like(e *plan.Expr) Eval {
	x, p, not := c.compile(e.Args[0]), c.compile(e.Args[1]), e.Not
	return func(r []Value) Value {
		v, pat := x(r), p(r)
		if v.IsNull() || pat.IsNull() {
			return Value{}
		}
		return types.NewBool(Like(v.S, pat.S) != not)
	}
}

// Like reports whether s matches the SQL pattern p.
func Like(s, p string) bool {
	// Iterative matching with backtracking to the last %.
	si, pi := 0, 0
	star, mark := -1, 0
	rs, rp := []rune(s), []rune(p)
	for si < len(rs) {
		switch {
		case pi < len(rp) && (rp[pi] == '_' || rp[pi] == rs[si]) && rp[pi] != '%':
			si++
			pi++
		case pi < len(rp) && rp[pi] == '%':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(rp) && rp[pi] == '%' {
		pi++
	}
	return pi == len(rp)
}

func (c *compiler) call(e *plan.Expr) Eval {
	args := c.all(e.Args)
	f := e.Fn
	buf := make([]Value, len(args))
	return func(r []Value) Value {
		for i, a := range args {
			buf[i] = a(r)
			if buf[i].IsNull() && !f.NullAware {
				return Value{}
			}
		}
		v, err := f.Eval(buf)
		if err != nil {
			c.fail(e, "%v", err)
			return Value{}
		}
		return v
	}
}

func (c *compiler) cast(e *plan.Expr) Eval {
	x := c.compile(e.Args[0])
	to := e.T
	return func(r []Value) Value {
		v := x(r)
		if v.IsNull() {
			return v
		}
		out, err := Cast(v, to)
		if err != nil {
			c.fail(e, "%v", err)
			return Value{}
		}
		return out
	}
}

// Cast converts v to type t, as CAST does.
func Cast(v Value, t *types.Type) (Value, error) {
	switch t.Kind {
	case types.String:
		if v.K == types.String {
			return v, nil
		}
		if v.K == types.Array || v.K == types.Map || v.K == types.Struct {
			return types.NewString(string(types.AppendJSON(nil, v, nil))), nil
		}
		return types.NewString(v.String()), nil
	case types.Decimal:
		if v.K == types.String {
			return types.ParseDecimal(v.S, t.Precision, t.Scale)
		}
		d, err := types.Rescale(v, t.Precision, t.Scale)
		if err != nil {
			return Value{}, fmt.Errorf("%v out of range for %s", v, t)
		}
		return d, nil
	case types.Int:
		var i int64
		switch v.K {
		case types.String:
			n, err := strconv.ParseInt(strings.TrimSpace(v.S), 10, 64)
			if err != nil {
				return Value{}, fmt.Errorf("cannot cast %q to %s", v.S, t)
			}
			i = n
		case types.Double:
			if math.IsNaN(v.F) || v.F >= 1<<63 || v.F < -1<<63 {
				return Value{}, fmt.Errorf("%v out of range for %s", v, t)
			}
			i = int64(v.F)
		case types.Decimal:
			i = v.I / int64(math.Pow10(int(v.Sc))) // toward zero
		default:
			i = v.I
		}
		if t.Narrow && (i > math.MaxInt32 || i < math.MinInt32) {
			return Value{}, fmt.Errorf("%d out of range for INTEGER", i)
		}
		return types.NewInt(i), nil
	case types.Double:
		if v.K == types.String {
			f, err := strconv.ParseFloat(strings.TrimSpace(v.S), 64)
			if err != nil {
				return Value{}, fmt.Errorf("cannot cast %q to DOUBLE", v.S)
			}
			return types.NewDouble(f), nil
		}
		return types.NewDouble(v.AsFloat()), nil
	case types.Bool:
		if v.K == types.String {
			switch strings.ToLower(strings.TrimSpace(v.S)) {
			case "true":
				return types.NewBool(true), nil
			case "false":
				return types.NewBool(false), nil
			}
			return Value{}, fmt.Errorf("cannot cast %q to BOOLEAN", v.S)
		}
		return v, nil
	case types.Timestamp:
		if v.K == types.String {
			ms, ok := types.ParseTimestamp(v.S)
			if !ok {
				return Value{}, fmt.Errorf("cannot cast %q to TIMESTAMP", v.S)
			}
			return types.NewTimestamp(ms), nil
		}
		return types.NewTimestamp(v.I), nil
	}
	return v, nil
}
