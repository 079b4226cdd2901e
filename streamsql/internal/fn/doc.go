// Package fn holds the scalar and aggregate functions of streaming SQL:
// their type rules (for the planner) and implementations (for execution).
//
// Runtime errors (a bad argument, an unparsable string) make the function
// return NULL and an error, which the executor counts; a query never stops
// because of one row.
//
//	f := fn.Lookup("UCASE")
//	t, err := f.Check([]*types.Type{types.StringT}) // STRING
//	v, err := f.Eval([]types.Value{types.NewString("a")}) // 'A'
package fn
