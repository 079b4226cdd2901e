package parse

import (
	"strconv"
	"strings"
)

// String prints a statement as canonical SQL: keywords in upper case,
// one space between tokens, parentheses only where precedence needs them.
// Parsing the result gives an equal tree (positions aside).
func String(s Statement) string {
	var b strings.Builder
	printStmt(&b, s)
	return b.String()
}

// ExprString prints an expression as canonical SQL.
func ExprString(e Expr) string {
	var b strings.Builder
	printExpr(&b, e, 0)
	return b.String()
}

// FormatType prints a type.
func FormatType(t *Type) string {
	var b strings.Builder
	printType(&b, t)
	return b.String()
}

// QuoteIdent returns name as written in SQL: bare when it is a plain,
// non-reserved identifier, otherwise in backquotes.
func QuoteIdent(name string) string {
	plain := name != ""
	for i, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '$')) {
			plain = false
			break
		}
	}
	if plain && !isKeyword(name) && !strings.EqualFold(name, "ARRAY") {
		return name
	}
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func printStmt(b *strings.Builder, s Statement) {
	switch s := s.(type) {
	case *Select:
		printSelect(b, s)
	case *CreateSource:
		b.WriteString("CREATE ")
		if s.OrReplace {
			b.WriteString("OR REPLACE ")
		}
		b.WriteString(kind(s.Table))
		if s.IfNotExists {
			b.WriteString(" IF NOT EXISTS")
		}
		b.WriteString(" " + QuoteIdent(s.Name))
		if len(s.Columns) > 0 {
			b.WriteString(" (")
			for i, c := range s.Columns {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(QuoteIdent(c.Name) + " ")
				printType(b, c.Type)
				if c.Key {
					b.WriteString(" KEY")
				}
				if c.PrimaryKey {
					b.WriteString(" PRIMARY KEY")
				}
			}
			b.WriteString(")")
		}
		if len(s.With) > 0 {
			b.WriteString(" WITH (")
			for i, p := range s.With {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(QuoteIdent(p.Name) + "=")
				printExpr(b, p.Value, 0)
			}
			b.WriteString(")")
		}
		if s.As != nil {
			b.WriteString(" AS ")
			printSelect(b, s.As)
		}
	case *Drop:
		b.WriteString("DROP " + kind(s.Table))
		if s.IfExists {
			b.WriteString(" IF EXISTS")
		}
		b.WriteString(" " + QuoteIdent(s.Name))
	case *Show:
		b.WriteString("SHOW " + s.What)
	case *Describe:
		b.WriteString("DESCRIBE " + QuoteIdent(s.Name))
	case *Explain:
		b.WriteString("EXPLAIN ")
		if s.Stmt != nil {
			printStmt(b, s.Stmt)
		} else {
			b.WriteString(QuoteIdent(s.QueryID))
		}
	case *Terminate:
		b.WriteString("TERMINATE " + QuoteIdent(s.QueryID))
	}
}

func kind(table bool) string {
	if table {
		return "TABLE"
	}
	return "STREAM"
}

func printSelect(b *strings.Builder, s *Select) {
	b.WriteString("SELECT ")
	for i, it := range s.Items {
		if i > 0 {
			b.WriteString(", ")
		}
		switch {
		case it.Star && it.Qualifier != "":
			b.WriteString(QuoteIdent(it.Qualifier) + ".*")
		case it.Star:
			b.WriteString("*")
		default:
			printExpr(b, it.Expr, 0)
			if it.Alias != "" {
				b.WriteString(" AS " + QuoteIdent(it.Alias))
			}
		}
	}
	b.WriteString(" FROM ")
	printRelation(b, s.From)
	if s.Where != nil {
		b.WriteString(" WHERE ")
		printExpr(b, s.Where, 0)
	}
	if w := s.Window; w != nil {
		b.WriteString(" WINDOW ")
		switch w.Kind {
		case WindowTumbling:
			b.WriteString("TUMBLING (SIZE " + durString(w.Size))
		case WindowHopping:
			b.WriteString("HOPPING (SIZE " + durString(w.Size))
		case WindowSession:
			b.WriteString("SESSION (" + durString(w.Size))
		}
		if w.Advance != nil {
			b.WriteString(", ADVANCE BY " + durString(*w.Advance))
		}
		if w.Retention != nil {
			b.WriteString(", RETENTION " + durString(*w.Retention))
		}
		if w.Grace != nil {
			b.WriteString(", GRACE PERIOD " + durString(*w.Grace))
		}
		b.WriteString(")")
	}
	printList(b, " GROUP BY ", s.GroupBy)
	if s.Having != nil {
		b.WriteString(" HAVING ")
		printExpr(b, s.Having, 0)
	}
	printList(b, " PARTITION BY ", s.PartitionBy)
	switch s.Emit {
	case EmitChanges:
		b.WriteString(" EMIT CHANGES")
	case EmitFinal:
		b.WriteString(" EMIT FINAL")
	}
	if s.Limit != nil {
		b.WriteString(" LIMIT " + strconv.FormatInt(*s.Limit, 10))
	}
	if s.AtPosition != nil {
		b.WriteString(" AT POSITION " + strconv.FormatInt(*s.AtPosition, 10))
	}
}

func printList(b *strings.Builder, head string, es []Expr) {
	if len(es) == 0 {
		return
	}
	b.WriteString(head)
	for i, e := range es {
		if i > 0 {
			b.WriteString(", ")
		}
		printExpr(b, e, 0)
	}
}

func durString(d Duration) string { return strconv.FormatInt(d.N, 10) + " " + d.Unit }

func printRelation(b *strings.Builder, r Relation) {
	switch r := r.(type) {
	case *SourceRef:
		printSource(b, r)
	case *Join:
		printRelation(b, r.Left)
		b.WriteString([]string{" JOIN ", " LEFT JOIN ", " RIGHT JOIN ", " FULL JOIN "}[r.Kind])
		printSource(b, r.Right)
		if r.Within != nil {
			b.WriteString(" WITHIN " + durString(*r.Within))
		}
		b.WriteString(" ON ")
		printExpr(b, r.On, 0)
	}
}

func printSource(b *strings.Builder, s *SourceRef) {
	b.WriteString(QuoteIdent(s.Name))
	if s.Alias != "" {
		b.WriteString(" AS " + QuoteIdent(s.Alias))
	}
}

func printType(b *strings.Builder, t *Type) {
	switch t.Kind {
	case TypeBoolean:
		b.WriteString("BOOLEAN")
	case TypeInteger:
		b.WriteString("INTEGER")
	case TypeBigint:
		b.WriteString("BIGINT")
	case TypeDouble:
		b.WriteString("DOUBLE")
	case TypeString:
		b.WriteString("STRING")
	case TypeTimestamp:
		b.WriteString("TIMESTAMP")
	case TypeDecimal:
		b.WriteString("DECIMAL(" + strconv.Itoa(t.Precision) + ", " + strconv.Itoa(t.Scale) + ")")
	case TypeArray:
		b.WriteString("ARRAY<")
		printType(b, t.Elem)
		b.WriteString(">")
	case TypeMap:
		b.WriteString("MAP<STRING, ")
		printType(b, t.Elem)
		b.WriteString(">")
	case TypeStruct:
		b.WriteString("STRUCT<")
		for i, f := range t.Fields {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(QuoteIdent(f.Name) + " ")
			printType(b, f.Type)
		}
		b.WriteString(">")
	}
}

const precAtom = 100

func exprPrec(e Expr) int {
	switch e := e.(type) {
	case *Binary:
		switch e.Op {
		case "OR":
			return precOr
		case "AND":
			return precAnd
		case "||":
			return precConcat
		case "+", "-":
			return precAdd
		case "*", "/", "%":
			return precMul
		}
		return precCompare
	case *Unary:
		if e.Op == "NOT" {
			return precNot
		}
		return precUnary
	case *Like, *In, *Between, *IsNull:
		return precCompare
	case *Deref, *Index:
		return precPostfix
	}
	return precAtom
}

// printExpr prints e, in parentheses when it binds no tighter than min.
func printExpr(b *strings.Builder, e Expr, min int) {
	if exprPrec(e) <= min {
		b.WriteString("(")
		defer b.WriteString(")")
	}
	switch e := e.(type) {
	case *Literal:
		switch e.Kind {
		case LitString:
			b.WriteString(quoteString(e.Text))
		default:
			b.WriteString(e.Text)
		}
	case *ColumnRef:
		if e.Qualifier != "" {
			b.WriteString(QuoteIdent(e.Qualifier) + ".")
		}
		b.WriteString(QuoteIdent(e.Name))
	case *Unary:
		if e.Op == "NOT" {
			b.WriteString("NOT ")
			printExpr(b, e.X, precNot-1)
			return
		}
		b.WriteString("-")
		if _, ok := e.X.(*Unary); ok {
			printExpr(b, e.X, precAtom)
			return
		}
		printExpr(b, e.X, precUnary-1)
	case *Binary:
		p := exprPrec(e)
		left, right := p-1, p
		if p == precCompare {
			left = p
		}
		printExpr(b, e.L, left)
		b.WriteString(" " + e.Op + " ")
		printExpr(b, e.R, right)
	case *Like:
		printExpr(b, e.X, precCompare)
		b.WriteString(not(e.Not) + " LIKE ")
		printExpr(b, e.Pattern, precCompare)
	case *Between:
		printExpr(b, e.X, precCompare)
		b.WriteString(not(e.Not) + " BETWEEN ")
		printExpr(b, e.Lo, precCompare)
		b.WriteString(" AND ")
		printExpr(b, e.Hi, precCompare)
	case *In:
		printExpr(b, e.X, precCompare)
		b.WriteString(not(e.Not) + " IN (")
		for i, x := range e.List {
			if i > 0 {
				b.WriteString(", ")
			}
			printExpr(b, x, 0)
		}
		b.WriteString(")")
	case *IsNull:
		printExpr(b, e.X, precCompare)
		b.WriteString(" IS" + not(e.Not) + " NULL")
	case *Case:
		b.WriteString("CASE")
		if e.Operand != nil {
			b.WriteString(" ")
			printExpr(b, e.Operand, 0)
		}
		for _, w := range e.Whens {
			b.WriteString(" WHEN ")
			printExpr(b, w.Cond, 0)
			b.WriteString(" THEN ")
			printExpr(b, w.Then, 0)
		}
		if e.Else != nil {
			b.WriteString(" ELSE ")
			printExpr(b, e.Else, 0)
		}
		b.WriteString(" END")
	case *Cast:
		b.WriteString("CAST(")
		printExpr(b, e.X, 0)
		b.WriteString(" AS ")
		printType(b, e.Type)
		b.WriteString(")")
	case *Call:
		b.WriteString(e.Name + "(")
		if e.Star {
			b.WriteString("*")
		}
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(", ")
			}
			printExpr(b, a, 0)
		}
		b.WriteString(")")
	case *Deref:
		printExpr(b, e.X, precPostfix-1)
		b.WriteString("->" + QuoteIdent(e.Field))
	case *Index:
		printExpr(b, e.X, precPostfix-1)
		b.WriteString("[")
		printExpr(b, e.Index, 0)
		b.WriteString("]")
	case *ArrayLit:
		b.WriteString("ARRAY[")
		for i, x := range e.Elems {
			if i > 0 {
				b.WriteString(", ")
			}
			printExpr(b, x, 0)
		}
		b.WriteString("]")
	}
}

func not(n bool) string {
	if n {
		return " NOT"
	}
	return ""
}
