package parse

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse parses one statement (an optional trailing ';' is allowed). Errors
// are *Error values: "line L, column C: expected X, found Y".
func Parse(src string) (Statement, error) {
	stmts, err := ParseAll(src)
	if err != nil {
		return nil, err
	}
	if len(stmts) != 1 {
		return nil, &Error{Pos{1, 1}, fmt.Sprintf("expected one statement, found %d", len(stmts))}
	}
	return stmts[0], nil
}

// ParseAll parses statements separated by ';'.
func ParseAll(src string) ([]Statement, error) {
	p := &parser{lex: newLexer(src)}
	if err := p.init(); err != nil {
		return nil, err
	}
	var out []Statement
	for {
		for p.op(";") {
			if err := p.next(); err != nil {
				return nil, err
			}
		}
		if p.tok.kind == tEOF {
			return out, nil
		}
		s, err := p.statement()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		if p.tok.kind != tEOF && !p.op(";") {
			return nil, p.expected("';' or end of input")
		}
	}
}

// ParseExpr parses a single expression.
func ParseExpr(src string) (Expr, error) {
	p := &parser{lex: newLexer(src)}
	if err := p.init(); err != nil {
		return nil, err
	}
	e, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.expected("end of input")
	}
	return e, nil
}

type parser struct {
	lex       *lexer
	tok, peek token
	depth     int
}

const maxDepth = 200

func (p *parser) init() error {
	var err error
	if p.tok, err = p.lex.next(); err != nil {
		return err
	}
	p.peek, err = p.lex.next()
	return err
}

func (p *parser) next() error {
	p.tok = p.peek
	if p.tok.kind == tEOF {
		return nil
	}
	var err error
	p.peek, err = p.lex.next()
	return err
}

func (p *parser) expected(what string) error {
	return &Error{p.tok.pos, "expected " + what + ", found " + p.tok.describe()}
}

// kw reports whether the current token is the keyword k (upper case).
func (p *parser) kw(k string) bool {
	return p.tok.kind == tIdent && strings.EqualFold(p.tok.text, k)
}

func (p *parser) op(o string) bool { return p.tok.kind == tOp && p.tok.text == o }

// accept consumes keyword k if present.
func (p *parser) accept(k string) (bool, error) {
	if !p.kw(k) {
		return false, nil
	}
	return true, p.next()
}

func (p *parser) expectKw(ks ...string) error {
	for _, k := range ks {
		if !p.kw(k) {
			return p.expected(k)
		}
		if err := p.next(); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) expectOp(o string) error {
	if !p.op(o) {
		return p.expected("'" + o + "'")
	}
	return p.next()
}

// ident consumes an identifier (quoted, or unquoted and not reserved).
func (p *parser) ident(what string) (string, Pos, error) {
	t := p.tok
	if t.kind == tQIdent || t.kind == tIdent && !isKeyword(t.text) {
		return t.text, t.pos, p.next()
	}
	return "", t.pos, p.expected(what)
}

func (p *parser) statement() (Statement, error) {
	pos := p.tok.pos
	switch {
	case p.kw("SELECT"):
		return p.selectStmt()
	case p.kw("CREATE"):
		return p.create()
	case p.kw("DROP"):
		return p.drop()
	case p.kw("SHOW") || p.kw("LIST"):
		if err := p.next(); err != nil {
			return nil, err
		}
		for _, w := range []string{"STREAMS", "TABLES", "QUERIES"} {
			if p.kw(w) {
				return &Show{Pos: pos, What: w}, p.next()
			}
		}
		return nil, p.expected("STREAMS, TABLES or QUERIES")
	case p.kw("DESCRIBE"):
		if err := p.next(); err != nil {
			return nil, err
		}
		name, _, err := p.ident("a stream or table name")
		return &Describe{Pos: pos, Name: name}, err
	case p.kw("EXPLAIN"):
		if err := p.next(); err != nil {
			return nil, err
		}
		if p.kw("SELECT") || p.kw("CREATE") {
			s, err := p.statement()
			return &Explain{Pos: pos, Stmt: s}, err
		}
		id, _, err := p.ident("a query or a query id")
		return &Explain{Pos: pos, QueryID: id}, err
	case p.kw("TERMINATE"):
		if err := p.next(); err != nil {
			return nil, err
		}
		id, _, err := p.ident("a query id")
		return &Terminate{Pos: pos, QueryID: id}, err
	}
	return nil, p.expected("a statement (SELECT, CREATE, DROP, SHOW, DESCRIBE, EXPLAIN or TERMINATE)")
}

func (p *parser) create() (Statement, error) {
	c := &CreateSource{Pos: p.tok.pos}
	if err := p.next(); err != nil {
		return nil, err
	}
	if ok, err := p.accept("OR"); err != nil {
		return nil, err
	} else if ok {
		if err := p.expectKw("REPLACE"); err != nil {
			return nil, err
		}
		c.OrReplace = true
	}
	switch {
	case p.kw("STREAM"):
	case p.kw("TABLE"):
		c.Table = true
	default:
		return nil, p.expected("STREAM or TABLE")
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	if p.kw("IF") {
		if err := p.expectKw("IF", "NOT", "EXISTS"); err != nil {
			return nil, err
		}
		c.IfNotExists = true
	}
	var err error
	if c.Name, _, err = p.ident("a name"); err != nil {
		return nil, err
	}
	if p.op("(") {
		if c.Columns, err = p.columns(c.Table); err != nil {
			return nil, err
		}
	}
	if p.kw("WITH") {
		if c.With, err = p.properties(); err != nil {
			return nil, err
		}
	}
	if ok, err := p.accept("AS"); err != nil {
		return nil, err
	} else if ok {
		if len(c.Columns) > 0 {
			return nil, &Error{c.Pos, "CREATE … AS SELECT takes no column list"}
		}
		if !p.kw("SELECT") {
			return nil, p.expected("SELECT")
		}
		if c.As, err = p.selectStmt(); err != nil {
			return nil, err
		}
	} else if len(c.Columns) == 0 {
		return nil, p.expected("'(', WITH or AS")
	}
	return c, nil
}

func (p *parser) columns(table bool) ([]ColumnDef, error) {
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	var cols []ColumnDef
	for {
		name, pos, err := p.ident("a column name")
		if err != nil {
			return nil, err
		}
		col := ColumnDef{Pos: pos, Name: name}
		if col.Type, err = p.typ(); err != nil {
			return nil, err
		}
		switch {
		case p.kw("PRIMARY"):
			if err := p.expectKw("PRIMARY", "KEY"); err != nil {
				return nil, err
			}
			if !table {
				return nil, &Error{pos, "a stream has no PRIMARY KEY (use KEY)"}
			}
			col.PrimaryKey = true
		case p.kw("KEY"):
			if err := p.next(); err != nil {
				return nil, err
			}
			if table {
				return nil, &Error{pos, "a table's key is a PRIMARY KEY"}
			}
			col.Key = true
		}
		cols = append(cols, col)
		if p.op(")") {
			return cols, p.next()
		}
		if err := p.expectOp(","); err != nil {
			return nil, err
		}
	}
}

func (p *parser) properties() ([]Property, error) {
	if err := p.expectKw("WITH"); err != nil {
		return nil, err
	}
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	var props []Property
	for {
		if p.tok.kind != tIdent && p.tok.kind != tQIdent {
			return nil, p.expected("a property name")
		}
		pr := Property{Pos: p.tok.pos, Name: strings.ToUpper(p.tok.text)}
		if err := p.next(); err != nil {
			return nil, err
		}
		if err := p.expectOp("="); err != nil {
			return nil, err
		}
		v, err := p.primary()
		if err != nil {
			return nil, err
		}
		if _, ok := v.(*Literal); !ok {
			return nil, &Error{v.Position(), "expected a literal property value"}
		}
		pr.Value = v
		props = append(props, pr)
		if p.op(")") {
			return props, p.next()
		}
		if err := p.expectOp(","); err != nil {
			return nil, err
		}
	}
}

func (p *parser) drop() (Statement, error) {
	d := &Drop{Pos: p.tok.pos}
	if err := p.next(); err != nil {
		return nil, err
	}
	switch {
	case p.kw("STREAM"):
	case p.kw("TABLE"):
		d.Table = true
	default:
		return nil, p.expected("STREAM or TABLE")
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	if p.kw("IF") {
		if err := p.expectKw("IF", "EXISTS"); err != nil {
			return nil, err
		}
		d.IfExists = true
	}
	var err error
	d.Name, _, err = p.ident("a name")
	return d, err
}

// typ parses a SQL type.
func (p *parser) typ() (*Type, error) {
	t := &Type{Pos: p.tok.pos}
	if p.tok.kind != tIdent {
		return nil, p.expected("a type")
	}
	name := strings.ToUpper(p.tok.text)
	if err := p.next(); err != nil {
		return nil, err
	}
	switch name {
	case "BOOLEAN":
		t.Kind = TypeBoolean
	case "INT", "INTEGER":
		t.Kind = TypeInteger
	case "BIGINT":
		t.Kind = TypeBigint
	case "DOUBLE":
		t.Kind = TypeDouble
	case "STRING", "VARCHAR":
		t.Kind = TypeString
	case "TIMESTAMP":
		t.Kind = TypeTimestamp
	case "DECIMAL":
		t.Kind = TypeDecimal
		if err := p.expectOp("("); err != nil {
			return nil, err
		}
		var err error
		if t.Precision, err = p.smallInt(); err != nil {
			return nil, err
		}
		if err := p.expectOp(","); err != nil {
			return nil, err
		}
		if t.Scale, err = p.smallInt(); err != nil {
			return nil, err
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
	case "ARRAY":
		t.Kind = TypeArray
		if err := p.expectOp("<"); err != nil {
			return nil, err
		}
		var err error
		if t.Elem, err = p.typ(); err != nil {
			return nil, err
		}
		if err := p.expectOp(">"); err != nil {
			return nil, err
		}
	case "MAP":
		t.Kind = TypeMap
		if err := p.expectOp("<"); err != nil {
			return nil, err
		}
		k, err := p.typ()
		if err != nil {
			return nil, err
		}
		if k.Kind != TypeString {
			return nil, &Error{k.Pos, "expected STRING map keys"}
		}
		if err := p.expectOp(","); err != nil {
			return nil, err
		}
		if t.Elem, err = p.typ(); err != nil {
			return nil, err
		}
		if err := p.expectOp(">"); err != nil {
			return nil, err
		}
	case "STRUCT":
		t.Kind = TypeStruct
		if err := p.expectOp("<"); err != nil {
			return nil, err
		}
		for {
			name, _, err := p.ident("a field name")
			if err != nil {
				return nil, err
			}
			ft, err := p.typ()
			if err != nil {
				return nil, err
			}
			t.Fields = append(t.Fields, Field{Name: name, Type: ft})
			if p.op(">") {
				break
			}
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		if err := p.expectOp(">"); err != nil {
			return nil, err
		}
	default:
		return nil, &Error{t.Pos, "expected a type, found " + name}
	}
	return t, nil
}

func (p *parser) smallInt() (int, error) {
	if p.tok.kind != tInt {
		return 0, p.expected("an integer")
	}
	n, err := strconv.Atoi(p.tok.text)
	if err != nil || n > 1000 {
		return 0, &Error{p.tok.pos, "integer out of range: " + p.tok.text}
	}
	return n, p.next()
}

func (p *parser) int64Lit(what string) (int64, error) {
	if p.tok.kind != tInt {
		return 0, p.expected(what)
	}
	n, err := strconv.ParseInt(p.tok.text, 10, 64)
	if err != nil {
		return 0, &Error{p.tok.pos, "integer out of range: " + p.tok.text}
	}
	return n, p.next()
}
