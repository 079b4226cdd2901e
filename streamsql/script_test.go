package streamsql_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/streamsql"
	"github.com/fjord-data/fjord/streamsql/internal/ddtest"
)

// TestScripts runs testdata/*.txt through an engine on an in-memory
// store, with its state in Pebble. Each "script" case is a list of lines:
//
//	exec STATEMENT          Exec; prints the message, table or plan
//	append STREAM TYPE JSON appends an event; prints nothing
//	query SELECT …          a pull query once every persistent query has
//	                        caught up with the store, or a push query from
//	                        the start (it needs a LIMIT); prints the changes
//	restart                 stops the engine and starts a new one on the
//	                        same state
//
// Errors print as "error: …".
func TestScripts(t *testing.T) {
	ddtest.Run(t, "testdata/*.txt", func(t *testing.T, c *ddtest.Case) string {
		if c.Cmd != "script" {
			t.Fatalf("%s:%d: unknown command %s", c.File, c.Line, c.Cmd)
		}
		store := eventstore.New(memstore.New(), nil)
		dir := t.TempDir()
		e := start(t, store, &streamsql.Options{State: openState(t, dir), BatchSize: 3})
		defer func() { e.stop(t) }()
		var out []string
		for _, line := range strings.Split(c.Input, "\n") {
			cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
			switch cmd {
			case "":
			case "exec":
				res, err := e.Exec(context.Background(), arg)
				if err != nil {
					out = append(out, "error: "+err.Error())
					continue
				}
				out = append(out, resultLines(res)...)
			case "append":
				f := strings.SplitN(arg, " ", 3)
				appendJSON(t, store, f[0], f[1], f[2])
			case "query":
				out = append(out, query(t, e.Engine, store, arg)...)
			case "restart":
				e.stop(t)
				e = start(t, store, &streamsql.Options{State: openState(t, dir), BatchSize: 2})
				out = append(out, "(restarted)")
			default:
				t.Fatalf("%s:%d: unknown script line %q", c.File, c.Line, line)
			}
		}
		return strings.Join(out, "\n")
	})
}

func resultLines(res streamsql.Result) []string {
	var out []string
	if res.Plan != "" {
		out = append(out, strings.Split(res.Plan, "\n")...)
	}
	if len(res.Columns) > 0 {
		out = append(out, strings.Join(res.Columns, " | "))
		for _, r := range res.Rows {
			out = append(out, strings.Join(r, " | "))
		}
	} else if res.Message != "" {
		out = append(out, res.Message)
	}
	return out
}

func query(t *testing.T, e *streamsql.Engine, store *eventstore.Store, sql string) []string {
	t.Helper()
	head, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ToUpper(sql), " EMIT ") {
		waitQueries(t, e, head)
	}
	var out []string
	for ch, err := range e.Query(context.Background(), sql, &streamsql.QueryOptions{FromStart: true}) {
		if err != nil {
			return append(out, "error: "+err.Error())
		}
		s := render(ch)
		if !ch.WindowStart.IsZero() {
			s += " [" + ch.WindowStart.Format("15:04:05") + ", " + ch.WindowEnd.Format("15:04:05") + ")"
		}
		out = append(out, s)
	}
	return out
}
