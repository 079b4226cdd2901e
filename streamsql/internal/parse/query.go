package parse

import "strings"

func (p *parser) selectStmt() (*Select, error) {
	s := &Select{Pos: p.tok.pos}
	if err := p.expectKw("SELECT"); err != nil {
		return nil, err
	}
	for {
		item, err := p.selectItem()
		if err != nil {
			return nil, err
		}
		s.Items = append(s.Items, item)
		if !p.op(",") {
			break
		}
		if err := p.next(); err != nil {
			return nil, err
		}
	}
	if err := p.expectKw("FROM"); err != nil {
		return nil, err
	}
	var err error
	if s.From, err = p.relation(); err != nil {
		return nil, err
	}
	if ok, err := p.accept("WHERE"); err != nil {
		return nil, err
	} else if ok {
		if s.Where, err = p.expr(0); err != nil {
			return nil, err
		}
	}
	if p.kw("WINDOW") {
		if s.Window, err = p.window(); err != nil {
			return nil, err
		}
	}
	if p.kw("GROUP") {
		if err := p.expectKw("GROUP", "BY"); err != nil {
			return nil, err
		}
		if s.GroupBy, err = p.exprList(); err != nil {
			return nil, err
		}
	}
	if ok, err := p.accept("HAVING"); err != nil {
		return nil, err
	} else if ok {
		if s.Having, err = p.expr(0); err != nil {
			return nil, err
		}
	}
	if p.kw("PARTITION") {
		if err := p.expectKw("PARTITION", "BY"); err != nil {
			return nil, err
		}
		if s.PartitionBy, err = p.exprList(); err != nil {
			return nil, err
		}
	}
	if ok, err := p.accept("EMIT"); err != nil {
		return nil, err
	} else if ok {
		switch {
		case p.kw("CHANGES"):
			s.Emit = EmitChanges
		case p.kw("FINAL"):
			s.Emit = EmitFinal
		default:
			return nil, p.expected("CHANGES or FINAL")
		}
		if err := p.next(); err != nil {
			return nil, err
		}
	}
	if ok, err := p.accept("LIMIT"); err != nil {
		return nil, err
	} else if ok {
		n, err := p.int64Lit("a row count")
		if err != nil {
			return nil, err
		}
		s.Limit = &n
	}
	if p.kw("AT") {
		if err := p.expectKw("AT", "POSITION"); err != nil {
			return nil, err
		}
		n, err := p.int64Lit("a position")
		if err != nil {
			return nil, err
		}
		s.AtPosition = &n
	}
	return s, nil
}

func (p *parser) exprList() ([]Expr, error) {
	var out []Expr
	for {
		e, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		if !p.op(",") {
			return out, nil
		}
		if err := p.next(); err != nil {
			return nil, err
		}
	}
}

func (p *parser) selectItem() (SelectItem, error) {
	it := SelectItem{Pos: p.tok.pos}
	if p.op("*") {
		it.Star = true
		return it, p.next()
	}
	if (p.tok.kind == tIdent || p.tok.kind == tQIdent) && p.peek.kind == tOp && p.peek.text == "." {
		// q.* needs two tokens of look-ahead beyond the identifier.
		save := *p.lex
		tok, peek := p.tok, p.peek
		q := p.tok.text
		if err := p.next(); err != nil {
			return it, err
		}
		if err := p.next(); err != nil {
			return it, err
		}
		if p.op("*") {
			it.Star, it.Qualifier = true, q
			return it, p.next()
		}
		*p.lex, p.tok, p.peek = save, tok, peek
	}
	var err error
	if it.Expr, err = p.expr(0); err != nil {
		return it, err
	}
	if ok, err := p.accept("AS"); err != nil {
		return it, err
	} else if ok {
		it.Alias, _, err = p.ident("an alias")
		return it, err
	}
	if p.implicitAlias() {
		it.Alias, _, err = p.ident("an alias")
	}
	return it, err
}

func (p *parser) sourceRef() (*SourceRef, error) {
	name, pos, err := p.ident("a stream or table name")
	if err != nil {
		return nil, err
	}
	r := &SourceRef{Pos: pos, Name: name}
	if ok, err := p.accept("AS"); err != nil {
		return nil, err
	} else if ok {
		r.Alias, _, err = p.ident("an alias")
		return r, err
	}
	if p.implicitAlias() {
		r.Alias, _, err = p.ident("an alias")
	}
	return r, err
}

func (p *parser) relation() (Relation, error) {
	left, err := p.sourceRef()
	if err != nil {
		return nil, err
	}
	var rel Relation = left
	for {
		j := &Join{Pos: p.tok.pos, Left: rel}
		switch {
		case p.kw("JOIN"):
		case p.kw("INNER"):
			if err := p.next(); err != nil {
				return nil, err
			}
		case p.kw("LEFT"), p.kw("RIGHT"), p.kw("FULL"):
			j.Kind = map[string]JoinKind{"LEFT": JoinLeft, "RIGHT": JoinRight, "FULL": JoinFull}[strings.ToUpper(p.tok.text)]
			if err := p.next(); err != nil {
				return nil, err
			}
			if _, err := p.accept("OUTER"); err != nil {
				return nil, err
			}
		default:
			return rel, nil
		}
		if err := p.expectKw("JOIN"); err != nil {
			return nil, err
		}
		if j.Right, err = p.sourceRef(); err != nil {
			return nil, err
		}
		if p.kw("WITHIN") {
			if j.Within, err = p.within(); err != nil {
				return nil, err
			}
		}
		if err := p.expectKw("ON"); err != nil {
			return nil, err
		}
		if j.On, err = p.expr(0); err != nil {
			return nil, err
		}
		if p.kw("WITHIN") && j.Within == nil {
			if j.Within, err = p.within(); err != nil {
				return nil, err
			}
		}
		rel = j
	}
}

func (p *parser) within() (*Duration, error) {
	if err := p.expectKw("WITHIN"); err != nil {
		return nil, err
	}
	d, err := p.duration()
	return &d, err
}

func (p *parser) duration() (Duration, error) {
	d := Duration{Pos: p.tok.pos}
	var err error
	if d.N, err = p.int64Lit("a duration"); err != nil {
		return d, err
	}
	if p.tok.kind != tIdent {
		return d, p.expected("a time unit")
	}
	u := strings.ToUpper(p.tok.text)
	switch strings.TrimSuffix(u, "S") {
	case "MILLISECOND", "SECOND", "MINUTE", "HOUR", "DAY":
		d.Unit = strings.TrimSuffix(u, "S") + "S"
	default:
		return d, p.expected("a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")
	}
	return d, p.next()
}

func (p *parser) window() (*Window, error) {
	w := &Window{Pos: p.tok.pos}
	if err := p.expectKw("WINDOW"); err != nil {
		return nil, err
	}
	switch {
	case p.kw("TUMBLING"):
		w.Kind = WindowTumbling
	case p.kw("HOPPING"):
		w.Kind = WindowHopping
	case p.kw("SESSION"):
		w.Kind = WindowSession
	default:
		return nil, p.expected("TUMBLING, HOPPING or SESSION")
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	first := true
	haveSize := false
	for {
		var err error
		switch {
		case w.Kind == WindowSession && first && p.tok.kind == tInt:
			w.Size, err = p.duration()
			haveSize = true
		case p.kw("SIZE") && w.Kind != WindowSession && !haveSize:
			if err = p.next(); err == nil {
				w.Size, err = p.duration()
				haveSize = true
			}
		case p.kw("ADVANCE") && w.Kind == WindowHopping && w.Advance == nil:
			if err = p.expectKw("ADVANCE", "BY"); err == nil {
				var d Duration
				d, err = p.duration()
				w.Advance = &d
			}
		case p.kw("GRACE") && w.Grace == nil:
			if err = p.expectKw("GRACE", "PERIOD"); err == nil {
				var d Duration
				d, err = p.duration()
				w.Grace = &d
			}
		case p.kw("RETENTION") && w.Retention == nil:
			if err = p.next(); err == nil {
				var d Duration
				d, err = p.duration()
				w.Retention = &d
			}
		default:
			switch {
			case w.Kind == WindowSession && first:
				return nil, p.expected("a session gap")
			case !haveSize:
				return nil, p.expected("SIZE")
			case w.Kind == WindowHopping && w.Advance == nil:
				return nil, p.expected("ADVANCE BY, GRACE PERIOD or RETENTION")
			}
			return nil, p.expected("GRACE PERIOD or RETENTION")
		}
		if err != nil {
			return nil, err
		}
		first = false
		if p.op(")") {
			break
		}
		if err := p.expectOp(","); err != nil {
			return nil, err
		}
	}
	if !haveSize {
		return nil, &Error{w.Pos, "window has no SIZE"}
	}
	if w.Kind == WindowHopping && w.Advance == nil {
		return nil, &Error{w.Pos, "HOPPING window has no ADVANCE BY"}
	}
	return w, p.next()
}

// implicitAlias reports whether the current token is an alias written
// without AS: an identifier that does not start a later clause.
func (p *parser) implicitAlias() bool {
	if p.tok.kind == tQIdent {
		return true
	}
	return p.tok.kind == tIdent && !isKeyword(p.tok.text) && !p.kw("WINDOW") && !p.kw("AT")
}
