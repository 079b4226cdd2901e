package parse

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pos is a place in the source text: 1-based line and column (in runes).
type Pos struct {
	Line, Col int
}

// Position returns p; nodes embed Pos and so report where they start.
func (p Pos) Position() Pos { return p }

func (p Pos) String() string { return fmt.Sprintf("line %d, column %d", p.Line, p.Col) }

// tokKind classifies tokens.
type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tQIdent // quoted identifier: `x` or "x"
	tString
	tInt
	tFloat
	tOp // punctuation and operators; text holds the operator
)

type token struct {
	kind tokKind
	text string // identifier (as written), literal value (unquoted), or operator
	pos  Pos
}

// describe names a token for error messages.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tIdent:
		if isKeyword(t.text) {
			return "keyword " + strings.ToUpper(t.text)
		}
		return "identifier " + t.text
	case tQIdent:
		return "identifier `" + t.text + "`"
	case tString:
		return "string '" + strings.ReplaceAll(t.text, "'", "''") + "'"
	case tInt, tFloat:
		return "number " + t.text
	default:
		return "'" + t.text + "'"
	}
}

// Error is a syntax or semantic error at a position in the source.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// lexer turns source text into tokens.
type lexer struct {
	src       string
	off       int
	line, col int
}

func newLexer(src string) *lexer { return &lexer{src: src, line: 1, col: 1} }

func (l *lexer) peekRune() (rune, int) {
	if l.off >= len(l.src) {
		return -1, 0
	}
	r, n := utf8.DecodeRuneInString(l.src[l.off:])
	return r, n
}

func (l *lexer) advance() rune {
	r, n := l.peekRune()
	if n == 0 {
		return -1
	}
	l.off += n
	if r == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	return r
}

func (l *lexer) at(s string) bool { return strings.HasPrefix(l.src[l.off:], s) }

func (l *lexer) skipSpace() error {
	for {
		r, _ := l.peekRune()
		switch {
		case r == -1:
			return nil
		case unicode.IsSpace(r):
			l.advance()
		case l.at("--"):
			for r, _ := l.peekRune(); r != -1 && r != '\n'; r, _ = l.peekRune() {
				l.advance()
			}
		case l.at("/*"):
			start := Pos{l.line, l.col}
			l.advance()
			l.advance()
			for !l.at("*/") {
				if l.advance() == -1 {
					return &Error{start, "unterminated comment"}
				}
			}
			l.advance()
			l.advance()
		default:
			return nil
		}
	}
}

// next returns the next token.
func (l *lexer) next() (token, error) {
	if err := l.skipSpace(); err != nil {
		return token{}, err
	}
	pos := Pos{l.line, l.col}
	r, _ := l.peekRune()
	switch {
	case r == -1:
		return token{kind: tEOF, pos: pos}, nil
	case r == '_' || unicode.IsLetter(r):
		start := l.off
		for r, _ := l.peekRune(); r == '_' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r); r, _ = l.peekRune() {
			l.advance()
		}
		return token{kind: tIdent, text: l.src[start:l.off], pos: pos}, nil
	case r >= '0' && r <= '9' || r == '.' && l.off+1 < len(l.src) && isDigit(l.src[l.off+1]):
		return l.number(pos)
	case r == '\'':
		s, err := l.quoted('\'', pos, "string")
		return token{kind: tString, text: s, pos: pos}, err
	case r == '`' || r == '"':
		s, err := l.quoted(r, pos, "quoted identifier")
		if err == nil && s == "" {
			err = &Error{pos, "empty quoted identifier"}
		}
		return token{kind: tQIdent, text: s, pos: pos}, err
	}
	for _, op := range []string{"->", "<>", "!=", "<=", ">=", "||"} {
		if l.at(op) {
			l.advance()
			l.advance()
			return token{kind: tOp, text: op, pos: pos}, nil
		}
	}
	if strings.ContainsRune("(),.;*+-/%=<>[]:", r) {
		l.advance()
		return token{kind: tOp, text: string(r), pos: pos}, nil
	}
	return token{}, &Error{pos, fmt.Sprintf("unexpected character %q", r)}
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func (l *lexer) number(pos Pos) (token, error) {
	start := l.off
	kind := tInt
	for l.off < len(l.src) && isDigit(l.src[l.off]) {
		l.advance()
	}
	if l.off < len(l.src) && l.src[l.off] == '.' {
		kind = tFloat
		l.advance()
		for l.off < len(l.src) && isDigit(l.src[l.off]) {
			l.advance()
		}
	}
	if l.off < len(l.src) && (l.src[l.off] == 'e' || l.src[l.off] == 'E') {
		save, sl, sc := l.off, l.line, l.col
		l.advance()
		if l.off < len(l.src) && (l.src[l.off] == '+' || l.src[l.off] == '-') {
			l.advance()
		}
		if l.off < len(l.src) && isDigit(l.src[l.off]) {
			kind = tFloat
			for l.off < len(l.src) && isDigit(l.src[l.off]) {
				l.advance()
			}
		} else {
			l.off, l.line, l.col = save, sl, sc
		}
	}
	if r, _ := l.peekRune(); r == '_' || unicode.IsLetter(r) {
		return token{}, &Error{Pos{l.line, l.col}, fmt.Sprintf("unexpected %q after number %s", r, l.src[start:l.off])}
	}
	return token{kind: kind, text: l.src[start:l.off], pos: pos}, nil
}

// quoted reads text between q quotes; a doubled quote stands for itself.
func (l *lexer) quoted(q rune, pos Pos, what string) (string, error) {
	l.advance()
	var b strings.Builder
	for {
		r := l.advance()
		switch {
		case r == -1:
			return "", &Error{pos, "unterminated " + what}
		case r == q:
			if r2, _ := l.peekRune(); r2 == q {
				l.advance()
				b.WriteRune(q)
				continue
			}
			return b.String(), nil
		default:
			b.WriteRune(r)
		}
	}
}

// reserved words cannot be used as unquoted identifiers.
var reserved = map[string]bool{
	"SELECT": true, "FROM": true, "WHERE": true, "AND": true, "OR": true, "NOT": true, "AS": true,
	"GROUP": true, "BY": true, "HAVING": true, "WINDOW": true, "EMIT": true, "LIMIT": true,
	"JOIN": true, "LEFT": true, "RIGHT": true, "FULL": true, "INNER": true, "OUTER": true, "ON": true,
	"WITHIN": true, "PARTITION": true, "CASE": true, "WHEN": true, "THEN": true, "ELSE": true, "END": true,
	"NULL": true, "TRUE": true, "FALSE": true, "IS": true, "IN": true, "LIKE": true, "BETWEEN": true,
	"CAST": true, "CREATE": true, "DROP": true, "WITH": true,
}

func isKeyword(s string) bool { return reserved[strings.ToUpper(s)] }
