package parse

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fjord-data/fjord/streamsql/internal/ddtest"
)

// TestParse runs testdata/*.txt: "parse" prints the canonical SQL of each
// statement (or the error), "expr" does the same for an expression, and
// "pos" lists every node with its position.
func TestParse(t *testing.T) {
	ddtest.Run(t, "testdata/*.txt", func(t *testing.T, c *ddtest.Case) string {
		switch c.Cmd {
		case "parse":
			stmts, err := ParseAll(c.Input)
			if err != nil {
				return "error: " + err.Error()
			}
			var out []string
			for _, s := range stmts {
				out = append(out, String(s))
				checkRoundTrip(t, s)
			}
			return strings.Join(out, "\n")
		case "expr":
			e, err := ParseExpr(c.Input)
			if err != nil {
				return "error: " + err.Error()
			}
			return ExprString(e)
		case "pos":
			s, err := Parse(c.Input)
			if err != nil {
				return "error: " + err.Error()
			}
			var b strings.Builder
			walk(reflect.ValueOf(s), &b)
			return b.String()
		}
		t.Fatalf("%s:%d: unknown command %q", c.File, c.Line, c.Cmd)
		return ""
	})
}

var ignorePos = cmpopts.IgnoreTypes(Pos{})

func checkRoundTrip(t *testing.T, s Statement) {
	t.Helper()
	printed := String(s)
	s2, err := Parse(printed)
	if err != nil {
		t.Errorf("reparsing %q: %v", printed, err)
		return
	}
	if d := cmp.Diff(s, s2, ignorePos); d != "" {
		t.Errorf("reparsing %q changed the tree (-first +second):\n%s", printed, d)
	}
}

// walk lists every node reachable from v with its position.
func walk(v reflect.Value, b *strings.Builder) {
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if !v.IsNil() {
			walk(v.Elem(), b)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walk(v.Index(i), b)
		}
	case reflect.Struct:
		if p, ok := v.Addr().Interface().(Node); ok && v.Type() != reflect.TypeFor[Pos]() {
			pos := p.Position()
			fmt.Fprintf(b, "%d:%d %s\n", pos.Line, pos.Col, v.Type().Name())
		}
		for i := range v.NumField() {
			if v.Type().Field(i).Type != reflect.TypeFor[Pos]() {
				walk(v.Field(i), b)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("SELECT a, b + 1 AS c FROM s WHERE a > 2 EMIT CHANGES")
	f.Fuzz(func(t *testing.T, src string) {
		stmts, err := ParseAll(src)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for _, s := range stmts {
			checkRoundTrip(t, s)
			if p := String(s); String(mustParse(t, p)) != p {
				t.Fatalf("printing is not stable for %q", p)
			}
		}
	})
}

func mustParse(t *testing.T, src string) Statement {
	s, err := Parse(src)
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	return s
}
