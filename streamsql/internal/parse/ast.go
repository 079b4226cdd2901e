package parse

import "time"

// Node is any syntax tree node; Position is where it starts in the source.
type Node interface{ Position() Pos }

// Statement is one SQL statement.
type Statement interface {
	Node
	stmt()
}

// Expr is an expression.
type Expr interface {
	Node
	expr()
}

// TypeKind names a SQL type.
type TypeKind uint8

// The SQL types.
const (
	TypeInvalid TypeKind = iota
	TypeBoolean
	TypeInteger
	TypeBigint
	TypeDouble
	TypeDecimal
	TypeString
	TypeTimestamp
	TypeArray
	TypeMap
	TypeStruct
)

// Type is a written SQL type.
type Type struct {
	Pos
	Kind      TypeKind
	Elem      *Type   // ARRAY<Elem>, MAP<STRING, Elem>
	Fields    []Field // STRUCT<name type, …>
	Precision int     // DECIMAL(Precision, Scale)
	Scale     int
}

// Field is one field of a STRUCT type.
type Field struct {
	Name string
	Type *Type
}

// ColumnDef declares a column of a stream or table.
type ColumnDef struct {
	Pos
	Name       string
	Type       *Type
	Key        bool // KEY (streams)
	PrimaryKey bool // PRIMARY KEY (tables)
}

// Property is one NAME=value entry of a WITH clause.
type Property struct {
	Pos
	Name  string // upper case
	Value Expr   // a literal
}

// CreateSource is CREATE STREAM|TABLE, with columns or AS SELECT.
type CreateSource struct {
	Pos
	Table       bool
	OrReplace   bool
	IfNotExists bool
	Name        string
	Columns     []ColumnDef
	With        []Property
	As          *Select // CREATE … AS SELECT
}

// Drop is DROP STREAM|TABLE.
type Drop struct {
	Pos
	Table    bool
	IfExists bool
	Name     string
}

// Show is SHOW STREAMS|TABLES|QUERIES.
type Show struct {
	Pos
	What string // STREAMS, TABLES or QUERIES
}

// Describe is DESCRIBE name.
type Describe struct {
	Pos
	Name string
}

// Explain is EXPLAIN statement, or EXPLAIN query-id.
type Explain struct {
	Pos
	Stmt    Statement // a SELECT or CREATE … AS SELECT
	QueryID string    // when explaining a running query
}

// Terminate is TERMINATE query-id.
type Terminate struct {
	Pos
	QueryID string
}

// EmitKind is a query's EMIT clause.
type EmitKind uint8

// The EMIT modes. EmitNone marks a pull query.
const (
	EmitNone EmitKind = iota
	EmitChanges
	EmitFinal
)

// Select is a query.
type Select struct {
	Pos
	Items       []SelectItem
	From        Relation
	Where       Expr
	Window      *Window
	GroupBy     []Expr
	Having      Expr
	PartitionBy []Expr
	Emit        EmitKind
	Limit       *int64
	AtPosition  *int64
}

// SelectItem is one projection: *, q.*, or an expression with an alias.
type SelectItem struct {
	Pos
	Star      bool
	Qualifier string // for q.*
	Expr      Expr
	Alias     string
}

// Relation is what a query reads: a source or a join.
type Relation interface {
	Node
	relation()
}

// SourceRef names a stream or table, with an optional alias.
type SourceRef struct {
	Pos
	Name  string
	Alias string
}

// JoinKind says which rows of a join survive without a match.
type JoinKind uint8

// The join kinds.
const (
	JoinInner JoinKind = iota
	JoinLeft
	JoinRight
	JoinFull
)

// Join joins a relation to one more source.
type Join struct {
	Pos
	Kind   JoinKind
	Left   Relation
	Right  *SourceRef
	On     Expr
	Within *Duration
}

// WindowKind names a window type.
type WindowKind uint8

// The window types.
const (
	WindowTumbling WindowKind = iota + 1
	WindowHopping
	WindowSession
)

// Window is the WINDOW clause.
type Window struct {
	Pos
	Kind      WindowKind
	Size      Duration // TUMBLING/HOPPING size, SESSION gap
	Advance   *Duration
	Grace     *Duration
	Retention *Duration
}

// Duration is a written length of time: 10 SECONDS.
type Duration struct {
	Pos
	N    int64
	Unit string // canonical plural: MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS
}

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration {
	switch d.Unit {
	case "MILLISECONDS":
		return time.Duration(d.N) * time.Millisecond
	case "SECONDS":
		return time.Duration(d.N) * time.Second
	case "MINUTES":
		return time.Duration(d.N) * time.Minute
	case "HOURS":
		return time.Duration(d.N) * time.Hour
	default:
		return time.Duration(d.N) * 24 * time.Hour
	}
}

// LiteralKind classifies literals.
type LiteralKind uint8

// The literal kinds.
const (
	LitNull LiteralKind = iota
	LitBool
	LitInt
	LitFloat
	LitString
)

// Literal is a constant. Text holds the value as written for numbers,
// the unquoted value for strings, and TRUE/FALSE for booleans.
type Literal struct {
	Pos
	Kind LiteralKind
	Text string
}

// ColumnRef names a column, optionally qualified by a source or alias.
// Pseudo-columns (ROWTIME, ROWOFFSET, …) are column references too.
type ColumnRef struct {
	Pos
	Qualifier string
	Name      string
}

// Unary is NOT x or -x.
type Unary struct {
	Pos
	Op string // NOT or -
	X  Expr
}

// Binary is a binary operation: arithmetic (+ - * / %), concatenation
// (||), comparison (= <> < <= > >=), AND and OR.
type Binary struct {
	Pos
	Op   string
	L, R Expr
}

// Like is x [NOT] LIKE pattern.
type Like struct {
	Pos
	Not        bool
	X, Pattern Expr
}

// In is x [NOT] IN (list).
type In struct {
	Pos
	Not  bool
	X    Expr
	List []Expr
}

// Between is x [NOT] BETWEEN lo AND hi.
type Between struct {
	Pos
	Not       bool
	X, Lo, Hi Expr
}

// IsNull is x IS [NOT] NULL.
type IsNull struct {
	Pos
	Not bool
	X   Expr
}

// When is one WHEN … THEN … arm of a CASE.
type When struct {
	Cond, Then Expr
}

// Case is CASE [operand] WHEN … THEN … [ELSE …] END.
type Case struct {
	Pos
	Operand Expr
	Whens   []When
	Else    Expr
}

// Cast is CAST(x AS type).
type Cast struct {
	Pos
	X    Expr
	Type *Type
}

// Call is a function call; Star marks COUNT(*).
type Call struct {
	Pos
	Name string // upper case
	Args []Expr
	Star bool
}

// Deref is struct access: x->field.
type Deref struct {
	Pos
	X     Expr
	Field string
}

// Index is array or map access: x[i].
type Index struct {
	Pos
	X, Index Expr
}

// ArrayLit is ARRAY[a, b, …].
type ArrayLit struct {
	Pos
	Elems []Expr
}

func (*CreateSource) stmt() {}
func (*Drop) stmt()         {}
func (*Show) stmt()         {}
func (*Describe) stmt()     {}
func (*Explain) stmt()      {}
func (*Terminate) stmt()    {}
func (*Select) stmt()       {}

func (*SourceRef) relation() {}
func (*Join) relation()      {}

func (*Literal) expr()   {}
func (*ColumnRef) expr() {}
func (*Unary) expr()     {}
func (*Binary) expr()    {}
func (*Like) expr()      {}
func (*In) expr()        {}
func (*Between) expr()   {}
func (*IsNull) expr()    {}
func (*Case) expr()      {}
func (*Cast) expr()      {}
func (*Call) expr()      {}
func (*Deref) expr()     {}
func (*Index) expr()     {}
func (*ArrayLit) expr()  {}
