package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// Input says which events of the store a source reads.
type Input struct {
	All        bool     // every event ($all)
	Stream     string   // one stream
	Category   string   // a category: streams named "<category>-…"
	EventTypes []string // only these event types (empty: all)
}

func (in Input) String() string {
	s := "$all"
	switch {
	case in.Stream != "":
		s = "stream " + in.Stream
	case in.Category != "":
		s = "category " + in.Category
	}
	if len(in.EventTypes) > 0 {
		s += " types " + strings.Join(in.EventTypes, ",")
	}
	return s
}

// Source is a stream or table in the catalog.
type Source struct {
	Name    string
	Table   bool
	Columns []types.Column // declared or, for CREATE … AS SELECT, the query's output
	Key     int            // index of the KEY / PRIMARY KEY column, or -1
	// TimestampCol is the column used as ROWTIME, or -1 for the commit
	// time of the event.
	TimestampCol int
	Input        Input
	// Query is the id of the persistent query that writes this source
	// (CREATE … AS SELECT), or "".
	Query string
	// Window is set for tables computed by a windowed aggregation: their
	// rows carry WINDOWSTART and WINDOWEND.
	Window *Window
	// Materialized tables are held by a persistent query and answer pull
	// queries.
	Materialized bool
	SQL          string // the defining statement, canonical
}

// Catalog finds sources by name (case-insensitive).
type Catalog interface {
	Source(name string) (*Source, bool)
}

// Pseudo-columns of every source row, after the declared columns.
var pseudoColumns = []types.Column{
	{Name: "ROWTIME", Type: types.TimestampT},
	{Name: "ROWOFFSET", Type: types.BigintT},
	{Name: "STREAM_ID", Type: types.StringT},
	{Name: "STREAM_VERSION", Type: types.BigintT},
	{Name: "EVENT_TYPE", Type: types.StringT},
}

// NumPseudo is the number of pseudo-columns after the declared ones.
const NumPseudo = 5

// Indexes of pseudo-columns relative to the first one.
const (
	PseudoRowtime = iota
	PseudoRowoffset
	PseudoStreamID
	PseudoStreamVersion
	PseudoEventType
)

// RowColumns returns the layout of the source's rows as queries see them:
// the declared columns, then ROWTIME, ROWOFFSET, STREAM_ID, STREAM_VERSION
// and EVENT_TYPE; a windowed table's rows end with WINDOWSTART, WINDOWEND
// instead.
func (s *Source) RowColumns() []types.Column {
	cols := append([]types.Column{}, s.Columns...)
	if s.Materialized {
		if s.Window != nil {
			cols = append(cols, types.Column{Name: "WINDOWSTART", Type: types.TimestampT}, types.Column{Name: "WINDOWEND", Type: types.TimestampT})
		}
		return cols
	}
	return append(cols, pseudoColumns...)
}

func isReserved(name string) bool {
	for _, c := range pseudoColumns {
		if strings.EqualFold(c.Name, name) {
			return true
		}
	}
	return strings.EqualFold(name, "WINDOWSTART") || strings.EqualFold(name, "WINDOWEND")
}

// Window is a planned WINDOW clause.
type Window struct {
	Kind      parse.WindowKind
	Size      time.Duration // session: the inactivity gap
	Advance   time.Duration // hopping
	Grace     time.Duration
	Retention time.Duration
}

func (w *Window) String() string {
	var b strings.Builder
	switch w.Kind {
	case parse.WindowTumbling:
		fmt.Fprintf(&b, "TUMBLING size=%s", w.Size)
	case parse.WindowHopping:
		fmt.Fprintf(&b, "HOPPING size=%s advance=%s", w.Size, w.Advance)
	case parse.WindowSession:
		fmt.Fprintf(&b, "SESSION gap=%s", w.Size)
	}
	fmt.Fprintf(&b, " grace=%s retention=%s", w.Grace, w.Retention)
	return b.String()
}

// DefaultGrace is the grace period of windows that do not state one.
const DefaultGrace = 0

// Create checks a CREATE STREAM|TABLE with columns and returns the source
// it declares.
func Create(c *parse.CreateSource) (*Source, error) {
	src := &Source{Name: c.Name, Table: c.Table, Key: -1, TimestampCol: -1, SQL: parse.String(c)}
	seen := map[string]bool{}
	for i, col := range c.Columns {
		if isReserved(col.Name) {
			return nil, errorf(col.Pos, "column name %s is reserved for a pseudo-column", col.Name)
		}
		if seen[strings.ToUpper(col.Name)] {
			return nil, errorf(col.Pos, "duplicate column %s", col.Name)
		}
		seen[strings.ToUpper(col.Name)] = true
		t, err := Type(col.Type)
		if err != nil {
			return nil, err
		}
		src.Columns = append(src.Columns, types.Column{Name: col.Name, Type: t})
		if col.Key || col.PrimaryKey {
			if src.Key >= 0 {
				return nil, errorf(col.Pos, "more than one key column")
			}
			src.Key = i
		}
	}
	if c.Table && src.Key < 0 {
		return nil, errorf(c.Pos, "table %s has no PRIMARY KEY column", c.Name)
	}
	haveSource := false
	for _, p := range c.With {
		v := p.Value.(*parse.Literal)
		switch p.Name {
		case "SOURCE":
			if v.Kind != parse.LitString || v.Text == "" {
				return nil, errorf(p.Pos, "SOURCE must be a non-empty string")
			}
			src.Input = inputOf(v.Text)
			haveSource = true
		case "EVENT_TYPES":
			if v.Kind != parse.LitString {
				return nil, errorf(p.Pos, "EVENT_TYPES must be a string")
			}
			for _, t := range strings.Split(v.Text, ",") {
				if t = strings.TrimSpace(t); t != "" {
					src.Input.EventTypes = append(src.Input.EventTypes, t)
				}
			}
		case "KEY":
			i := columnIndex(src.Columns, v.Text)
			if v.Kind != parse.LitString || i < 0 {
				return nil, errorf(p.Pos, "KEY names no column (%s)", v.Text)
			}
			if src.Key >= 0 && src.Key != i {
				return nil, errorf(p.Pos, "KEY conflicts with the key column %s", src.Columns[src.Key].Name)
			}
			src.Key = i
		case "TIMESTAMP":
			i := columnIndex(src.Columns, v.Text)
			if v.Kind != parse.LitString || i < 0 {
				return nil, errorf(p.Pos, "TIMESTAMP names no column (%s)", v.Text)
			}
			if k := src.Columns[i].Type.Kind; k != types.Timestamp && k != types.Int {
				return nil, errorf(p.Pos, "TIMESTAMP column %s is %s, not TIMESTAMP or BIGINT", v.Text, src.Columns[i].Type)
			}
			src.TimestampCol = i
		default:
			return nil, errorf(p.Pos, "unknown property %s (known: SOURCE, EVENT_TYPES, KEY, TIMESTAMP)", p.Name)
		}
	}
	if !haveSource {
		return nil, errorf(c.Pos, "%s needs WITH (SOURCE='…'): a stream id, a category ('orders-') or '$all'", c.Name)
	}
	return src, nil
}

// inputOf reads a SOURCE property: '$all', 'category-' or a stream id.
func inputOf(s string) Input {
	switch {
	case s == "$all":
		return Input{All: true}
	case strings.HasSuffix(s, "-"):
		return Input{Category: strings.TrimSuffix(s, "-")}
	}
	return Input{Stream: s}
}

func columnIndex(cols []types.Column, name string) int {
	for i, c := range cols {
		if strings.EqualFold(c.Name, name) {
			return i
		}
	}
	return -1
}

// Type converts a written type.
func Type(t *parse.Type) (*types.Type, error) {
	switch t.Kind {
	case parse.TypeBoolean:
		return types.BooleanT, nil
	case parse.TypeInteger:
		return types.IntegerT, nil
	case parse.TypeBigint:
		return types.BigintT, nil
	case parse.TypeDouble:
		return types.DoubleT, nil
	case parse.TypeString:
		return types.StringT, nil
	case parse.TypeTimestamp:
		return types.TimestampT, nil
	case parse.TypeArray, parse.TypeMap:
		e, err := Type(t.Elem)
		if err != nil {
			return nil, err
		}
		if t.Kind == parse.TypeArray {
			return types.ArrayOf(e), nil
		}
		return types.MapOf(e), nil
	case parse.TypeStruct:
		st := &types.Type{Kind: types.Struct}
		for _, f := range t.Fields {
			ft, err := Type(f.Type)
			if err != nil {
				return nil, err
			}
			st.Fields = append(st.Fields, types.Field{Name: f.Name, Type: ft})
		}
		return st, nil
	}
	if t.Precision < 1 || t.Precision > types.MaxDecimalPrecision || t.Scale > t.Precision {
		return nil, errorf(t.Pos, "DECIMAL(%d, %d): the precision must be 1 to %d and the scale at most the precision", t.Precision, t.Scale, types.MaxDecimalPrecision)
	}
	return types.DecimalOf(t.Precision, t.Scale), nil
}

func errorf(p parse.Pos, format string, args ...any) error {
	return &parse.Error{Pos: p, Msg: fmt.Sprintf(format, args...)}
}

// Derive returns the source that CREATE STREAM|TABLE … AS SELECT creates
// from its planned query q.
func Derive(c *parse.CreateSource, q *Query) (*Source, error) {
	src := &Source{Name: c.Name, Table: c.Table, Columns: q.Columns, Key: q.Key, TimestampCol: -1, SQL: parse.String(c)}
	if q.Pull {
		return nil, errorf(c.As.Pos, "CREATE … AS SELECT needs a push query (EMIT CHANGES)")
	}
	if q.Limit > 0 {
		return nil, errorf(c.As.Pos, "a persistent query takes no LIMIT")
	}
	for _, col := range q.Columns {
		if isReserved(col.Name) && !(c.Table && q.Agg != nil && q.Agg.Window != nil) {
			return nil, errorf(c.As.Pos, "output column %s is reserved; rename it with AS", col.Name)
		}
	}
	if c.Table {
		if q.Agg == nil && !q.Source.Table {
			return nil, errorf(c.As.Pos, "CREATE TABLE … AS SELECT over a stream needs a GROUP BY")
		}
		if q.Agg != nil && len(q.Agg.Keys) > 0 && q.Key < 0 && len(q.Agg.Keys) == 1 {
			return nil, errorf(c.As.Pos, "the GROUP BY key %s must be selected", q.Agg.Keys[0].Text)
		}
		src.Materialized = true
		if q.Agg != nil {
			src.Window = q.Agg.Window
		}
		// Window bounds are added to a windowed table's rows separately.
		if src.Window != nil {
			var cols []types.Column
			for _, col := range src.Columns {
				if !isReserved(col.Name) {
					cols = append(cols, col)
				}
			}
			if len(cols) != len(src.Columns) {
				return nil, errorf(c.As.Pos, "a windowed table has WINDOWSTART and WINDOWEND already; do not select them")
			}
		}
	} else if q.Agg != nil {
		return nil, errorf(c.As.Pos, "an aggregation makes a table: use CREATE TABLE … AS SELECT")
	}
	name := strings.ToLower(c.Name)
	if !c.Table {
		src.Input = Input{Stream: name}
	}
	for _, p := range c.With {
		v := p.Value.(*parse.Literal)
		switch {
		case p.Name == "SOURCE" && !c.Table && v.Kind == parse.LitString && v.Text != "" && v.Text != "$all":
			src.Input = inputOf(v.Text)
			if src.Input.Category != "" && q.Key < 0 && q.PartitionBy == nil {
				return nil, errorf(p.Pos, "SOURCE='%s' spreads rows over streams by key, and the query has none (add PARTITION BY)", v.Text)
			}
		default:
			return nil, errorf(p.Pos, "unknown or invalid property %s for CREATE … AS SELECT", p.Name)
		}
	}
	return src, nil
}
