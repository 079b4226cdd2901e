package exec

import "github.com/fjord-data/fjord/streamsql/internal/types"

// filter applies a predicate to a changelog: an update whose old row
// passed and new row does not becomes a delete, and the reverse an insert.
func filter(pred Eval, in []Change) []Change {
	out := in[:0]
	for _, c := range in {
		switch c.Op {
		case Insert:
			if pred(c.Row).Bool() {
				out = append(out, c)
			}
		case Delete:
			if pred(c.Row).Bool() {
				out = append(out, c)
			}
		case Update:
			was, is := pred(c.Old).Bool(), pred(c.Row).Bool()
			switch {
			case was && is:
				out = append(out, c)
			case is:
				c.Op, c.Old = Insert, nil
				out = append(out, c)
			case was:
				c.Op, c.Row, c.Old = Delete, c.Old, nil
				out = append(out, c)
			}
		}
	}
	return out
}

// project computes output rows.
func project(cols []Eval, in []Change) []Change {
	for i := range in {
		c := &in[i]
		c.Row = projectRow(cols, c.Row)
		if c.Old != nil {
			c.Old = projectRow(cols, c.Old)
		}
	}
	return in
}

func projectRow(cols []Eval, row []Value) []Value {
	out := make([]Value, len(cols))
	for i, f := range cols {
		out[i] = f(row)
	}
	return out
}

// rekey sets each change's key from an expression (PARTITION BY).
func rekey(key Eval, in []Change) {
	for i := range in {
		v := key(in[i].Row)
		in[i].KeyVals = []Value{v}
		in[i].Key = string(types.AppendKey(nil, v))
	}
}
