package exec

import (
	"strings"

	"github.com/fjord-data/fjord/streamsql/internal/plan"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// ChangeOp is what a change does to a row.
type ChangeOp uint8

// The change operations. Streams carry only inserts; tables carry all
// three.
const (
	Insert ChangeOp = iota + 1
	Update
	Delete
)

func (o ChangeOp) String() string {
	switch o {
	case Insert:
		return "+"
	case Update:
		return "~"
	case Delete:
		return "-"
	}
	return "?"
}

// Change is one element of a changelog.
type Change struct {
	Op  ChangeOp
	Row []Value // the new row; for Delete, the row removed
	Old []Value // for Update, the row replaced
	// Key identifies the row of a table (group key and window); empty for
	// streams.
	Key      string
	KeyVals  []Value
	Windowed bool
	// WindowStart and WindowEnd bound a windowed aggregate's row
	// (milliseconds since the epoch).
	WindowStart, WindowEnd int64
	Time                   int64 // ROWTIME in milliseconds
	Offset                 int64 // the input position that caused it
}

// String renders a change for tests and logs: "+ a, 1", "~ a, 2 (was a,
// 1)", "- a, 2", with the window as "[start, end)" after the key.
func (c Change) String() string {
	var b strings.Builder
	b.WriteString(c.Op.String())
	b.WriteString(" ")
	if c.Windowed {
		b.WriteString("[" + types.NewTimestamp(c.WindowStart).String() + ", " + types.NewTimestamp(c.WindowEnd).String() + ") ")
	}
	b.WriteString(RowString(c.Row))
	if c.Op == Update {
		b.WriteString(" (was " + RowString(c.Old) + ")")
	}
	return b.String()
}

// RowString renders values separated by ", ".
func RowString(row []Value) string {
	parts := make([]string, len(row))
	for i, v := range row {
		parts[i] = v.String()
	}
	return strings.Join(parts, ", ")
}

// rowtimeIndex returns where ROWTIME sits in a source row.
func rowtimeIndex(src *plan.Source) int { return len(src.Columns) + plan.PseudoRowtime }
