package streamsql

import (
	"time"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/streamsql/internal/exec"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// Op says what a change does.
type Op uint8

// The change operations. Streams only insert; tables insert, update and
// delete rows by key.
const (
	Insert Op = Op(exec.Insert)
	Update Op = Op(exec.Update)
	Delete Op = Op(exec.Delete)
)

func (o Op) String() string {
	switch o {
	case Insert:
		return "INSERT"
	case Update:
		return "UPDATE"
	case Delete:
		return "DELETE"
	}
	return "?"
}

// Column describes an output column.
type Column struct {
	Name string
	Type string // SQL type, for example "BIGINT" or "ARRAY<STRING>"
}

// Change is one row of a query's output changelog. Values are nil (NULL),
// bool, int64, float64, string (STRING, and DECIMAL exactly in decimal
// notation, such as "12.50"), time.Time (TIMESTAMP, UTC), []any (ARRAY),
// or map[string]any (MAP, and STRUCT by field name).
//
// A Change is read-only: a push query converts each change once and hands
// the same Row and Old slices, and the same ARRAY, MAP and STRUCT values
// inside them, to every subscriber of the query, so modifying them would
// change what the other subscribers see (and race with them). Copy what
// you need to modify (slices.Clone, maps.Clone; deeply for nested values).
type Change struct {
	Op      Op
	Columns []Column // shared by every change of a query; do not modify
	Row     []any    // the new row; for Delete, the row removed; read-only
	Old     []any    // for Update, the row replaced; read-only
	// WindowStart and WindowEnd bound a windowed aggregate's row; zero
	// otherwise.
	WindowStart, WindowEnd time.Time
	// Position is the position of the input event that caused the change
	// (for rows of a pull query, the last event that changed the row).
	Position eventstore.Position
}

func columnsOf(cols []types.Column) []Column {
	out := make([]Column, len(cols))
	for i, c := range cols {
		out[i] = Column{Name: c.Name, Type: c.Type.String()}
	}
	return out
}

// convertChanges converts a batch, once for every subscriber of a push
// query: the changes' rows share one backing array.
func convertChanges(cs []exec.Change, cols []Column, ts []types.Column) []Change {
	n := 0
	for i := range cs {
		n += len(cs[i].Row) + len(cs[i].Old)
	}
	vals := make([]any, n)
	out := make([]Change, len(cs))
	for i := range cs {
		c := &cs[i]
		out[i] = Change{Op: Op(c.Op), Columns: cols, Position: eventstore.Position(c.Offset)}
		out[i].Row, vals = convertRowInto(vals, c.Row, ts), vals[len(c.Row):]
		if c.Old != nil {
			out[i].Old, vals = convertRowInto(vals, c.Old, ts), vals[len(c.Old):]
		}
		if c.Windowed {
			out[i].WindowStart, out[i].WindowEnd = time.UnixMilli(c.WindowStart).UTC(), time.UnixMilli(c.WindowEnd).UTC()
		}
	}
	return out
}

func convertChange(c *exec.Change, cols []Column, ts []types.Column) Change {
	out := Change{Op: Op(c.Op), Columns: cols, Row: convertRow(c.Row, ts), Position: eventstore.Position(c.Offset)}
	if c.Old != nil {
		out.Old = convertRow(c.Old, ts)
	}
	if c.Windowed {
		out.WindowStart, out.WindowEnd = time.UnixMilli(c.WindowStart).UTC(), time.UnixMilli(c.WindowEnd).UTC()
	}
	return out
}

func convertRow(row []types.Value, ts []types.Column) []any {
	return convertRowInto(make([]any, len(row)), row, ts)
}

// convertRowInto converts row into the first len(row) elements of dst
// and returns them, capped so that appending to one row cannot overwrite
// the next.
func convertRowInto(dst []any, row []types.Value, ts []types.Column) []any {
	out := dst[:len(row):len(row)]
	for i, v := range row {
		var t *types.Type
		if i < len(ts) {
			t = ts[i].Type
		}
		out[i] = convert(v, t)
	}
	return out
}

func convert(v types.Value, t *types.Type) any {
	switch v.K {
	case types.Bool:
		return v.I != 0
	case types.Int:
		return v.I
	case types.Double:
		return v.F
	case types.Decimal:
		return types.FormatDecimal(v.I, int(v.Sc))
	case types.String:
		return v.S
	case types.Timestamp:
		return time.UnixMilli(v.I).UTC()
	case types.Array:
		l := v.List()
		out := make([]any, len(l))
		for i, e := range l {
			out[i] = convert(e, elemOf(t))
		}
		return out
	case types.Map:
		out := map[string]any{}
		for k, e := range v.MapValue() {
			out[k] = convert(e, elemOf(t))
		}
		return out
	case types.Struct:
		out := map[string]any{}
		for i, e := range v.List() {
			if t != nil && i < len(t.Fields) {
				out[t.Fields[i].Name] = convert(e, t.Fields[i].Type)
			}
		}
		return out
	}
	return nil
}

func elemOf(t *types.Type) *types.Type {
	if t == nil {
		return nil
	}
	return t.Elem
}
