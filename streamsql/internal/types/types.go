package types

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is the kind of a type or value.
type Kind uint8

// The kinds. Null is only a value kind (a NULL of any type).
const (
	Null Kind = iota
	Bool
	Int // INTEGER (Narrow) or BIGINT
	Double
	String
	Timestamp // milliseconds since the Unix epoch, UTC
	Array
	Map // MAP<STRING, Elem>
	Struct
	Decimal // DECIMAL(Precision, Scale): Value.I unscaled, Value.Sc the scale
)

// MaxDecimalPrecision is the most digits a DECIMAL holds (an int64).
const MaxDecimalPrecision = 18

// Type is a SQL type.
type Type struct {
	Kind   Kind
	Narrow bool    // INTEGER rather than BIGINT
	Elem   *Type   // Array, Map
	Fields []Field // Struct
	// Precision and Scale of a DECIMAL: digits in all, and after the
	// decimal point.
	Precision, Scale int
}

// DecimalOf returns DECIMAL(precision, scale).
func DecimalOf(precision, scale int) *Type {
	return &Type{Kind: Decimal, Precision: precision, Scale: scale}
}

// Field is a named field of a STRUCT.
type Field struct {
	Name string
	Type *Type
}

// The scalar types.
var (
	BooleanT   = &Type{Kind: Bool}
	IntegerT   = &Type{Kind: Int, Narrow: true}
	BigintT    = &Type{Kind: Int}
	DoubleT    = &Type{Kind: Double}
	StringT    = &Type{Kind: String}
	TimestampT = &Type{Kind: Timestamp}
	// NullT is the type of the NULL literal; it converts to any type.
	NullT = &Type{Kind: Null}
)

// ArrayOf returns ARRAY<t>.
func ArrayOf(t *Type) *Type { return &Type{Kind: Array, Elem: t} }

// MapOf returns MAP<STRING, t>.
func MapOf(t *Type) *Type { return &Type{Kind: Map, Elem: t} }

// String prints the type in SQL.
func (t *Type) String() string {
	switch t.Kind {
	case Null:
		return "NULL"
	case Bool:
		return "BOOLEAN"
	case Int:
		if t.Narrow {
			return "INTEGER"
		}
		return "BIGINT"
	case Double:
		return "DOUBLE"
	case String:
		return "STRING"
	case Timestamp:
		return "TIMESTAMP"
	case Array:
		return "ARRAY<" + t.Elem.String() + ">"
	case Map:
		return "MAP<STRING, " + t.Elem.String() + ">"
	case Decimal:
		return "DECIMAL(" + strconv.Itoa(t.Precision) + ", " + strconv.Itoa(t.Scale) + ")"
	}
	var b strings.Builder
	b.WriteString("STRUCT<")
	for i, f := range t.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Name + " " + f.Type.String())
	}
	b.WriteString(">")
	return b.String()
}

// Equal reports whether two types are the same.
func (t *Type) Equal(u *Type) bool {
	if t.Kind != u.Kind || t.Narrow != u.Narrow || t.Precision != u.Precision || t.Scale != u.Scale {
		return false
	}
	switch t.Kind {
	case Array, Map:
		return t.Elem.Equal(u.Elem)
	case Struct:
		return slices.EqualFunc(t.Fields, u.Fields, func(a, b Field) bool {
			return strings.EqualFold(a.Name, b.Name) && a.Type.Equal(b.Type)
		})
	}
	return true
}

// Numeric reports whether t is INTEGER, BIGINT or DOUBLE.
func (t *Type) Numeric() bool { return t.Kind == Int || t.Kind == Double || t.Kind == Decimal }

// FieldIndex returns the index of a struct field (case-insensitive), or -1.
func (t *Type) FieldIndex(name string) int {
	for i, f := range t.Fields {
		if strings.EqualFold(f.Name, name) {
			return i
		}
	}
	return -1
}

// Value is a SQL value. The zero Value is NULL.
type Value struct {
	K  Kind
	Sc int8    // Decimal: the scale
	I  int64   // Bool (0 or 1), Int, Timestamp
	F  float64 // Double
	S  string  // String
	X  any     // Array and Struct: []Value; Map: map[string]Value
}

// Constructors.
func NewBool(b bool) Value {
	if b {
		return Value{K: Bool, I: 1}
	}
	return Value{K: Bool}
}

// NewInt returns an integer value.
func NewInt(i int64) Value { return Value{K: Int, I: i} }

// NewDouble returns a DOUBLE value.
func NewDouble(f float64) Value { return Value{K: Double, F: f} }

// NewString returns a STRING value.
func NewString(s string) Value { return Value{K: String, S: s} }

// NewTimestamp returns a TIMESTAMP value of ms milliseconds since the epoch.
func NewTimestamp(ms int64) Value { return Value{K: Timestamp, I: ms} }

// NewDecimal returns the DECIMAL unscaled × 10^-scale.
func NewDecimal(unscaled int64, scale int) Value {
	return Value{K: Decimal, I: unscaled, Sc: int8(scale)}
}

// NewArray returns an ARRAY value.
func NewArray(vs []Value) Value { return Value{K: Array, X: vs} }

// NewMap returns a MAP value.
func NewMap(m map[string]Value) Value { return Value{K: Map, X: m} }

// NewStruct returns a STRUCT value with fields in type order.
func NewStruct(vs []Value) Value { return Value{K: Struct, X: vs} }

// IsNull reports whether v is NULL.
func (v Value) IsNull() bool { return v.K == Null }

// Bool returns a BOOLEAN value's truth; NULL is false.
func (v Value) Bool() bool { return v.K == Bool && v.I != 0 }

// List returns the elements of an ARRAY or the fields of a STRUCT.
func (v Value) List() []Value {
	l, _ := v.X.([]Value)
	return l
}

// MapValue returns the entries of a MAP.
func (v Value) MapValue() map[string]Value {
	m, _ := v.X.(map[string]Value)
	return m
}

// AsFloat returns a numeric value as float64.
func (v Value) AsFloat() float64 {
	switch v.K {
	case Double:
		return v.F
	case Decimal:
		return float64(v.I) / math.Pow10(int(v.Sc))
	}
	return float64(v.I)
}

// Compare orders two non-NULL values of comparable kinds (numbers with
// numbers, others with their own kind); NULL sorts first.
func Compare(a, b Value) int {
	switch {
	case a.K == Null || b.K == Null:
		return cmpInt(boolInt(a.K != Null), boolInt(b.K != Null))
	case a.K == Decimal || b.K == Decimal:
		if a.K != Double && b.K != Double {
			return compareDecimal(a, b)
		}
		return cmpFloat(a.AsFloat(), b.AsFloat())
	case a.K == Double || b.K == Double:
		return cmpFloat(a.AsFloat(), b.AsFloat())
	case a.K == String:
		return strings.Compare(a.S, b.S)
	case a.K == Array || a.K == Struct:
		return slices.CompareFunc(a.List(), b.List(), Compare)
	case a.K == Map:
		return strings.Compare(string(AppendKey(nil, a)), string(AppendKey(nil, b)))
	}
	return cmpInt(a.I, b.I)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Equal reports whether two values are equal (NULL equals NULL here; SQL
// comparison operators treat NULL separately).
func Equal(a, b Value) bool { return Compare(a, b) == 0 && (a.K == Null) == (b.K == Null) }

// String renders a value for people: NULL, true, 42, 1.5, text, [1, 2],
// {a: 1}, and timestamps in RFC 3339 with milliseconds.
func (v Value) String() string {
	var b strings.Builder
	v.write(&b, false)
	return b.String()
}

func (v Value) write(b *strings.Builder, quote bool) {
	switch v.K {
	case Null:
		b.WriteString("NULL")
	case Bool:
		b.WriteString(strconv.FormatBool(v.I != 0))
	case Int:
		b.WriteString(strconv.FormatInt(v.I, 10))
	case Double:
		b.WriteString(strconv.FormatFloat(v.F, 'g', -1, 64))
	case Decimal:
		b.WriteString(FormatDecimal(v.I, int(v.Sc)))
	case String:
		if quote {
			b.WriteString(strconv.Quote(v.S))
		} else {
			b.WriteString(v.S)
		}
	case Timestamp:
		b.WriteString(time.UnixMilli(v.I).UTC().Format("2006-01-02T15:04:05.000Z"))
	case Array, Struct:
		b.WriteString("[")
		for i, e := range v.List() {
			if i > 0 {
				b.WriteString(", ")
			}
			e.write(b, true)
		}
		b.WriteString("]")
	case Map:
		m := v.MapValue()
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(k) + ": ")
			m[k].write(b, true)
		}
		b.WriteString("}")
	}
}

// cmpFloat orders floats, NaN first.
func cmpFloat(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	case x == y:
		return 0
	}
	return cmpInt(boolInt(!math.IsNaN(x)), boolInt(!math.IsNaN(y)))
}
