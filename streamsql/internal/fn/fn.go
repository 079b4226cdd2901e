package fn

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// Value and Type are the value model's types.
type (
	Value = types.Value
	Type  = types.Type
)

// ErrArgs reports a call whose arguments do not fit the function.
var ErrArgs = errors.New("streamsql: wrong arguments")

// Scalar is a function of one row.
type Scalar struct {
	Name string
	// Check returns the result type for argument types, or an error that
	// wraps ErrArgs.
	Check func(args []*Type) (*Type, error)
	// Eval computes the result. Arguments are never reused by the
	// caller after Eval returns. NULL arguments are passed through to
	// Eval only when NullAware; otherwise a NULL argument gives NULL.
	Eval      func(args []Value) (Value, error)
	NullAware bool
	// Coerce: the arguments take the result's type (integers become
	// DOUBLE where the result is DOUBLE), as in COALESCE.
	Coerce bool
}

// Lookup returns the scalar function called name (upper case), or nil.
func Lookup(name string) *Scalar { return scalars()[name] }

// Names lists every scalar function.
func Names() []string {
	var out []string
	for n := range scalars() {
		out = append(out, n)
	}
	return out
}

// signature builds a Check for fixed parameter types; integers are
// accepted where DOUBLE is expected, and NULL anywhere.
func signature(ret *Type, params ...*Type) func([]*Type) (*Type, error) {
	return func(args []*Type) (*Type, error) {
		if len(args) != len(params) {
			return nil, fmt.Errorf("%w: takes %d arguments, got %d", ErrArgs, len(params), len(args))
		}
		for i, a := range args {
			if !Assignable(a, params[i]) {
				return nil, fmt.Errorf("%w: argument %d is %s, expected %s", ErrArgs, i+1, a, params[i])
			}
		}
		return ret, nil
	}
}

// Assignable reports whether a value of type from may be used where to is
// expected: the same type, NULL, or an integer for a DOUBLE or BIGINT.
func Assignable(from, to *Type) bool {
	switch {
	case from.Kind == types.Null || to == nil:
		return true
	case from.Kind == types.Int && to.Kind == types.Double:
		return true
	case from.Kind == types.Int && to.Kind == types.Int:
		return true
	case from.Kind == types.Decimal && to.Kind == types.Double:
		return true
	case to.Kind == types.Array && from.Kind == types.Array:
		return Assignable(from.Elem, to.Elem)
	case to.Kind == types.Map && from.Kind == types.Map:
		return Assignable(from.Elem, to.Elem)
	}
	return from.Equal(to)
}

// anyArray is a parameter placeholder: any ARRAY.
func argKind(args []*Type, i int, k types.Kind, name string) error {
	if args[i].Kind != k && args[i].Kind != types.Null {
		return fmt.Errorf("%w: argument %d is %s, expected %s", ErrArgs, i+1, args[i], name)
	}
	return nil
}

func nargs(args []*Type, min, max int) error {
	if len(args) < min || len(args) > max {
		if min == max {
			return fmt.Errorf("%w: takes %d arguments, got %d", ErrArgs, min, len(args))
		}
		return fmt.Errorf("%w: takes %d to %d arguments, got %d", ErrArgs, min, max, len(args))
	}
	return nil
}

// Common unifies types for COALESCE, CASE and friends: NULL gives way,
// integers widen to DOUBLE, INTEGER to BIGINT.
func Common(a, b *Type) (*Type, bool) {
	switch {
	case a.Kind == types.Null:
		return b, true
	case b.Kind == types.Null:
		return a, true
	case a.Kind == types.Int && b.Kind == types.Int:
		if a.Narrow && b.Narrow {
			return a, true
		}
		return types.BigintT, true
	case a.Kind == types.Double || b.Kind == types.Double:
		if a.Numeric() && b.Numeric() {
			return types.DoubleT, true
		}
		return nil, false
	case a.Kind == types.Decimal && b.Numeric() || b.Kind == types.Decimal && a.Numeric():
		// Both DECIMAL, or DECIMAL and an integer (DECIMAL(18, 0)).
		pa, sa := decimalShape(a)
		pb, sb := decimalShape(b)
		scale := max(sa, sb)
		return types.DecimalOf(min(types.MaxDecimalPrecision, max(pa-sa, pb-sb)+scale), scale), true
	case a.Equal(b):
		return a, true
	}
	return nil, false
}

func upper(s string) string { return strings.ToUpper(s) }

// decimalShape returns the precision and scale of a DECIMAL, or of an
// integer seen as one.
func decimalShape(t *Type) (int, int) {
	if t.Kind == types.Decimal {
		return t.Precision, t.Scale
	}
	return types.MaxDecimalPrecision, 0
}

// DecimalArith returns the type of a DECIMAL operation on operands of
// types a and b (DECIMAL or integer): + and - keep the larger scale, *
// adds the scales, % keeps the larger scale.
func DecimalArith(op string, a, b *Type) (*Type, bool) {
	pa, sa := decimalShape(a)
	pb, sb := decimalShape(b)
	switch op {
	case "*":
		if sa+sb > types.MaxDecimalPrecision {
			return nil, false
		}
		return types.DecimalOf(min(types.MaxDecimalPrecision, pa+pb), sa+sb), true
	case "+", "-":
		s := max(sa, sb)
		return types.DecimalOf(min(types.MaxDecimalPrecision, max(pa-sa, pb-sb)+s+1), s), true
	}
	s := max(sa, sb)
	return types.DecimalOf(min(types.MaxDecimalPrecision, max(pa-sa, pb-sb)+s), s), true
}
