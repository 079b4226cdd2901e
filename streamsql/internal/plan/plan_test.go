package plan

import (
	"strings"
	"testing"

	"github.com/fjord-data/fjord/streamsql/internal/ddtest"
	"github.com/fjord-data/fjord/streamsql/internal/parse"
)

type catalog map[string]*Source

func (c catalog) Source(name string) (*Source, bool) {
	s, ok := c[strings.ToUpper(name)]
	return s, ok
}

// TestPlan runs testdata/*.txt: "define" registers sources (CREATE
// statements, also … AS SELECT), "plan" prints EXPLAIN of a query or the
// error.
func TestPlan(t *testing.T) {
	ddtest.Run(t, "testdata/*.txt", func(t *testing.T, c *ddtest.Case) string {
		cat := catalog{}
		return run(cat, c)
	})
}

func run(cat catalog, c *ddtest.Case) string {
	stmts, err := parse.ParseAll(c.Input)
	if err != nil {
		return "error: " + err.Error()
	}
	var out []string
	for _, s := range stmts {
		switch s := s.(type) {
		case *parse.CreateSource:
			var src *Source
			if s.As != nil {
				var q *Query
				if q, err = Select(s.As, cat); err == nil {
					src, err = Derive(s, q)
				}
			} else {
				src, err = Create(s)
			}
			if err != nil {
				return strings.Join(append(out, "error: "+err.Error()), "\n")
			}
			cat[strings.ToUpper(src.Name)] = src
			var cols []string
			for i, col := range src.Columns {
				k := ""
				if i == src.Key {
					k = " KEY"
				}
				cols = append(cols, col.Name+" "+col.Type.String()+k)
			}
			out = append(out, "created "+src.Name+" ("+strings.Join(cols, ", ")+") from "+src.Input.String())
		case *parse.Select:
			q, err := Select(s, cat)
			if err != nil {
				return strings.Join(append(out, "error: "+err.Error()), "\n")
			}
			out = append(out, q.Explain())
		}
	}
	return strings.Join(out, "\n")
}
