package parse

import "strings"

// Binding powers, loosest first.
const (
	precOr = iota + 1
	precAnd
	precNot
	precCompare // = <> < <= > >= LIKE IN BETWEEN IS
	precConcat  // ||
	precAdd     // + -
	precMul     // * / %
	precUnary   // -x
	precPostfix // x->f, x[i]
)

// infixPrec returns the binding power of the current token as an infix
// operator, or 0.
func (p *parser) infixPrec() int {
	t := p.tok
	if t.kind == tOp {
		switch t.text {
		case "=", "<>", "!=", "<", "<=", ">", ">=":
			return precCompare
		case "||":
			return precConcat
		case "+", "-":
			return precAdd
		case "*", "/", "%":
			return precMul
		case "->", "[":
			return precPostfix
		}
		return 0
	}
	if t.kind != tIdent {
		return 0
	}
	switch strings.ToUpper(t.text) {
	case "OR":
		return precOr
	case "AND":
		return precAnd
	case "LIKE", "IN", "BETWEEN", "IS":
		return precCompare
	case "NOT":
		switch strings.ToUpper(p.peek.text) {
		case "LIKE", "IN", "BETWEEN":
			if p.peek.kind == tIdent {
				return precCompare
			}
		}
	}
	return 0
}

// expr parses an expression whose operators bind tighter than minPrec.
func (p *parser) expr(minPrec int) (Expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, &Error{p.tok.pos, "expression nested too deeply"}
	}
	left, err := p.prefix()
	if err != nil {
		return nil, err
	}
	for {
		prec := p.infixPrec()
		if prec == 0 || prec <= minPrec {
			return left, nil
		}
		if left, err = p.infix(left, prec); err != nil {
			return nil, err
		}
	}
}

func (p *parser) prefix() (Expr, error) {
	pos := p.tok.pos
	switch {
	case p.kw("NOT"):
		if err := p.next(); err != nil {
			return nil, err
		}
		x, err := p.expr(precNot - 1)
		return &Unary{Pos: pos, Op: "NOT", X: x}, err
	case p.op("-"):
		if err := p.next(); err != nil {
			return nil, err
		}
		x, err := p.expr(precUnary)
		if err != nil {
			return nil, err
		}
		return &Unary{Pos: pos, Op: "-", X: x}, nil
	case p.op("+"):
		if err := p.next(); err != nil {
			return nil, err
		}
		return p.expr(precUnary)
	}
	return p.primary()
}

func (p *parser) primary() (Expr, error) {
	t := p.tok
	switch t.kind {
	case tInt:
		return &Literal{Pos: t.pos, Kind: LitInt, Text: t.text}, p.next()
	case tFloat:
		return &Literal{Pos: t.pos, Kind: LitFloat, Text: t.text}, p.next()
	case tString:
		return &Literal{Pos: t.pos, Kind: LitString, Text: t.text}, p.next()
	case tQIdent:
		return p.columnRef()
	case tOp:
		if t.text == "(" {
			if err := p.next(); err != nil {
				return nil, err
			}
			e, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			return e, p.expectOp(")")
		}
		return nil, p.expected("an expression")
	case tIdent:
	default:
		return nil, p.expected("an expression")
	}
	switch strings.ToUpper(t.text) {
	case "NULL":
		return &Literal{Pos: t.pos, Kind: LitNull, Text: "NULL"}, p.next()
	case "TRUE", "FALSE":
		return &Literal{Pos: t.pos, Kind: LitBool, Text: strings.ToUpper(t.text)}, p.next()
	case "CASE":
		return p.caseExpr()
	case "CAST":
		return p.cast()
	case "ARRAY":
		if p.peek.kind == tOp && p.peek.text == "[" {
			return p.arrayLit()
		}
	}
	if isKeyword(t.text) {
		return nil, p.expected("an expression")
	}
	if p.peek.kind == tOp && p.peek.text == "(" {
		return p.call()
	}
	return p.columnRef()
}

func (p *parser) columnRef() (Expr, error) {
	name, pos, err := p.ident("a column")
	if err != nil {
		return nil, err
	}
	c := &ColumnRef{Pos: pos, Name: name}
	if p.op(".") {
		if err := p.next(); err != nil {
			return nil, err
		}
		c.Qualifier = name
		if c.Name, _, err = p.ident("a column name"); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (p *parser) call() (Expr, error) {
	c := &Call{Pos: p.tok.pos, Name: strings.ToUpper(p.tok.text)}
	if err := p.next(); err != nil {
		return nil, err
	}
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	if p.op("*") {
		c.Star = true
		if err := p.next(); err != nil {
			return nil, err
		}
		return c, p.expectOp(")")
	}
	if p.op(")") {
		return c, p.next()
	}
	var err error
	if c.Args, err = p.exprList(); err != nil {
		return nil, err
	}
	return c, p.expectOp(")")
}

func (p *parser) arrayLit() (Expr, error) {
	a := &ArrayLit{Pos: p.tok.pos}
	if err := p.next(); err != nil {
		return nil, err
	}
	if err := p.expectOp("["); err != nil {
		return nil, err
	}
	if p.op("]") {
		return a, p.next()
	}
	var err error
	if a.Elems, err = p.exprList(); err != nil {
		return nil, err
	}
	return a, p.expectOp("]")
}

func (p *parser) cast() (Expr, error) {
	c := &Cast{Pos: p.tok.pos}
	if err := p.next(); err != nil {
		return nil, err
	}
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	var err error
	if c.X, err = p.expr(0); err != nil {
		return nil, err
	}
	if err := p.expectKw("AS"); err != nil {
		return nil, err
	}
	if c.Type, err = p.typ(); err != nil {
		return nil, err
	}
	return c, p.expectOp(")")
}

func (p *parser) caseExpr() (Expr, error) {
	c := &Case{Pos: p.tok.pos}
	if err := p.next(); err != nil {
		return nil, err
	}
	var err error
	if !p.kw("WHEN") {
		if c.Operand, err = p.expr(0); err != nil {
			return nil, err
		}
	}
	for p.kw("WHEN") {
		if err := p.next(); err != nil {
			return nil, err
		}
		var w When
		if w.Cond, err = p.expr(0); err != nil {
			return nil, err
		}
		if err := p.expectKw("THEN"); err != nil {
			return nil, err
		}
		if w.Then, err = p.expr(0); err != nil {
			return nil, err
		}
		c.Whens = append(c.Whens, w)
	}
	if len(c.Whens) == 0 {
		return nil, p.expected("WHEN")
	}
	if ok, err := p.accept("ELSE"); err != nil {
		return nil, err
	} else if ok {
		if c.Else, err = p.expr(0); err != nil {
			return nil, err
		}
	}
	return c, p.expectKw("END")
}

func (p *parser) infix(left Expr, prec int) (Expr, error) {
	t := p.tok
	pos := left.Position()
	if t.kind == tOp {
		if err := p.next(); err != nil {
			return nil, err
		}
		switch t.text {
		case "->":
			// Any word may name a field: x->end is unambiguous.
			if p.tok.kind != tIdent && p.tok.kind != tQIdent {
				return nil, p.expected("a field name")
			}
			return &Deref{Pos: pos, X: left, Field: p.tok.text}, p.next()
		case "[":
			i, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			return &Index{Pos: pos, X: left, Index: i}, p.expectOp("]")
		}
		op := t.text
		if op == "!=" {
			op = "<>"
		}
		right, err := p.expr(prec)
		if err != nil {
			return nil, err
		}
		if prec == precCompare {
			if err := p.noChainedComparison(); err != nil {
				return nil, err
			}
		}
		return &Binary{Pos: pos, Op: op, L: left, R: right}, nil
	}
	word := strings.ToUpper(t.text)
	if err := p.next(); err != nil {
		return nil, err
	}
	switch word {
	case "OR", "AND":
		right, err := p.expr(prec)
		return &Binary{Pos: pos, Op: word, L: left, R: right}, err
	case "IS":
		not, err := p.accept("NOT")
		if err != nil {
			return nil, err
		}
		if err := p.expectKw("NULL"); err != nil {
			return nil, err
		}
		return &IsNull{Pos: pos, Not: not, X: left}, p.noChainedComparison()
	}
	not := false
	if word == "NOT" {
		not = true
		word = strings.ToUpper(p.tok.text)
		if err := p.next(); err != nil {
			return nil, err
		}
	}
	var e Expr
	switch word {
	case "LIKE":
		pat, err := p.expr(precCompare)
		if err != nil {
			return nil, err
		}
		e = &Like{Pos: pos, Not: not, X: left, Pattern: pat}
	case "BETWEEN":
		lo, err := p.expr(precCompare)
		if err != nil {
			return nil, err
		}
		if err := p.expectKw("AND"); err != nil {
			return nil, err
		}
		hi, err := p.expr(precCompare)
		if err != nil {
			return nil, err
		}
		e = &Between{Pos: pos, Not: not, X: left, Lo: lo, Hi: hi}
	case "IN":
		if err := p.expectOp("("); err != nil {
			return nil, err
		}
		list, err := p.exprList()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		e = &In{Pos: pos, Not: not, X: left, List: list}
	}
	return e, p.noChainedComparison()
}

// noChainedComparison rejects a = b = c, which SQL does not define.
func (p *parser) noChainedComparison() error {
	if p.infixPrec() == precCompare {
		return &Error{p.tok.pos, "expected AND, OR or end of expression, found " + p.tok.describe() + " (comparisons do not chain; use parentheses)"}
	}
	return nil
}
