package exec

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/streamsql/internal/ddtest"
	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
)

type catalog map[string]*plan.Source

func (c catalog) Source(name string) (*plan.Source, bool) {
	s, ok := c[strings.ToUpper(name)]
	return s, ok
}

// TestRun runs testdata/*.txt. A "run [batch=N] [restart=K]" case holds
// CREATE statements and one push query, then a line "events:" and one
// event per line, "stream type time-ms json", or "watermark ms" to
// advance the watermark as an idle timeout does. Events are processed N
// at a time (default 1). With restart=K, the pipeline's state is saved
// after event K, and a new pipeline loaded from it runs the rest. The
// output lists every change, then the error counts when any is not zero.
func TestRun(t *testing.T) {
	ddtest.Run(t, "testdata/*.txt", func(t *testing.T, c *ddtest.Case) string {
		switch c.Cmd {
		case "run":
			return runCase(t, c)
		case "eval":
			return evalCase(t, c)
		}
		t.Fatalf("%s:%d: unknown command %s", c.File, c.Line, c.Cmd)
		return ""
	})
}

func runCase(t *testing.T, c *ddtest.Case) string {
	out := runPipeline(t, c, false)
	if enc := runPipeline(t, c, true); enc != out {
		t.Errorf("%s:%d: with groups kept encoded (-decoded +encoded):\n%s", c.File, c.Line, cmp.Diff(out, enc))
	}
	return out
}

// runPipeline runs a case. With encoded, an unwindowed aggregation keeps
// its groups encoded with none decoded between batches (so that every
// batch decodes the groups it touches); its state is saved and published
// after every batch, and the rows read from the group store must be those
// its changes leave.
func runPipeline(t *testing.T, c *ddtest.Case, encoded bool) string {
	batch, restart := 1, -1
	for _, a := range c.Args {
		k, v, _ := strings.Cut(a, "=")
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s:%d: bad argument %s", c.File, c.Line, a)
		}
		switch k {
		case "batch":
			batch = n
		case "restart":
			restart = n
		}
	}
	sql, events, _ := strings.Cut(c.Input, "\nevents:")
	stmts, err := parse.ParseAll(sql)
	if err != nil {
		return "error: " + err.Error()
	}
	cat := catalog{}
	var q *plan.Query
	for _, s := range stmts {
		switch s := s.(type) {
		case *parse.CreateSource:
			src, err := plan.Create(s)
			if err != nil {
				return "error: " + err.Error()
			}
			cat[strings.ToUpper(src.Name)] = src
		case *parse.Select:
			if q, err = plan.Select(s, cat); err != nil {
				return "error: " + err.Error()
			}
		}
	}
	log := &ErrorLog{}
	p := New(q, log)
	var store *GroupStore
	if encoded {
		store = p.KeepEncoded(0)
	}
	state := map[string][]byte{} // what the encoded run saved
	rows := map[string]string{}  // what its changes leave
	var out []string
	emit := func(cs []Change) {
		for _, ch := range cs {
			out = append(out, ch.String())
			if ch.Op == Delete {
				delete(rows, ch.Key)
			} else {
				rows[ch.Key] = RowString(ch.Row) + " @ " + RowString(ch.KeyVals)
			}
		}
		if store == nil {
			return
		}
		p.Save(func(k string, v []byte) {
			if v == nil {
				delete(state, k)
			} else {
				state[k] = v
			}
		})
		store.Publish()
		stored, err := store.Rows()
		if err != nil {
			t.Fatalf("%s:%d: GroupStore.Rows: %v", c.File, c.Line, err)
		}
		got := map[string]string{}
		for _, ch := range stored {
			got[ch.Key] = RowString(ch.Row) + " @ " + RowString(ch.KeyVals)
			if l, ok, err := store.Lookup(ch.Key); err != nil || !ok || !rowsEqual(l.Row, ch.Row) {
				t.Errorf("%s:%d: Lookup(%q) = %v, %v, %v; want %v", c.File, c.Line, ch.Key, l, ok, err, ch)
			}
		}
		if d := cmp.Diff(rows, got); d != "" {
			t.Errorf("%s:%d: after event %d, rows in the group store (-changes +store):\n%s", c.File, c.Line, p.Position(), d)
		}
		if len(p.agg.groups) > 0 && len(p.agg.dirty) == 0 {
			// The next batch spills every group before it starts.
			p.agg.spill()
			if len(p.agg.groups) != 0 {
				t.Errorf("%s:%d: %d groups decoded after a spill, want 0", c.File, c.Line, len(p.agg.groups))
			}
		}
	}
	var pending []Event
	flush := func() {
		emit(p.Process(pending))
		pending = pending[:0]
	}
	n := 0
	for i, line := range strings.Split(events, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "watermark" {
			flush()
			ms, _ := strconv.ParseInt(f[1], 10, 64)
			emit(p.Watermark(ms))
			continue
		}
		if len(f) < 4 {
			t.Fatalf("%s: event line %d: want stream type time json", c.File, i+1)
		}
		ms, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("%s: event line %d: %v", c.File, i+1, err)
		}
		n++
		stream, _, _ := strings.Cut(f[0], "@")
		pending = append(pending, Event{Stream: stream, Type: f[1], Time: ms, Position: int64(n), Version: 1,
			Data: []byte(strings.Join(f[3:], " "))})
		if len(pending) >= batch {
			flush()
		}
		if n == restart {
			flush()
			if store != nil {
				p = New(q, log)
				store = p.KeepEncoded(0)
				for k, v := range state {
					if err := p.Load(k, v); err != nil {
						t.Fatalf("load %q: %v", k, err)
					}
				}
			} else {
				p = reload(t, p, q, log)
			}
			out = append(out, "(restart)")
		}
	}
	flush()
	if d, r, l := log.Counts(); d+r+l > 0 {
		out = append(out, fmt.Sprintf("errors: decode=%d runtime=%d late=%d", d, r, l))
		for _, m := range log.Recent() {
			out = append(out, "  "+m)
		}
	}
	return strings.Join(out, "\n")
}

// reload saves p's state into a map and loads it into a new pipeline, as
// a restart does.
func reload(t *testing.T, p *Pipeline, q *plan.Query, log *ErrorLog) *Pipeline {
	state := map[string][]byte{}
	p.Save(func(k string, v []byte) {
		if v == nil {
			delete(state, k)
		} else {
			state[k] = v
		}
	})
	p2 := New(q, log)
	for k, v := range state {
		if err := p2.Load(k, v); err != nil {
			t.Fatalf("load %q: %v", k, err)
		}
	}
	return p2
}

// evalCase evaluates one expression per line over the row of
// s (i INT = 7, d DOUBLE = 2.5, str STRING = ' Hello World ', ts TIMESTAMP
// = 2026-03-04T05:06:07.089Z, arr ARRAY<INT> = [3, 1, 2], m MAP<STRING,
// INT> = {a: 1, b: 2}, nul STRING = NULL) and prints "expr => value",
// with runtime errors after it.
func evalCase(t *testing.T, c *ddtest.Case) string {
	src, err := plan.Create(mustParse(t, `CREATE STREAM s (i INT, d DOUBLE, str STRING, ts TIMESTAMP, arr ARRAY<INT>, m MAP<STRING, INT>, nul STRING) WITH (SOURCE='s-')`).(*parse.CreateSource))
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog{"S": src}
	var out []string
	for _, line := range strings.Split(c.Input, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		q, err := plan.Select(mustParse(t, "SELECT "+line+" AS x FROM s EMIT CHANGES").(*parse.Select), cat)
		if err != nil {
			out = append(out, line+" => error: "+err.Error())
			continue
		}
		log := &ErrorLog{}
		p := New(q, log)
		res := p.Process([]Event{{Stream: "s-1", Type: "E", Time: 1, Position: 1, Version: 1,
			Data: []byte(`{"i":7,"d":2.5,"str":" Hello World ","ts":"2026-03-04T05:06:07.089Z","arr":[3,1,2],"m":{"a":1,"b":2}}`)}})
		v := res[0].Row[0]
		s := v.String()
		if v.K == 4 {
			s = fmt.Sprintf("%q", v.S)
		}
		r := line + " => " + s + " " + q.Columns[0].Type.String()
		if !v.IsNull() && v.K != q.Columns[0].Type.Kind {
			r += fmt.Sprintf(" (value of kind %d, not the type's)", v.K)
		}
		for _, m := range log.Recent() {
			r += " (" + m[strings.Index(m, ": ")+2:] + ")"
		}
		out = append(out, r)
	}
	return strings.Join(out, "\n")
}

func mustParse(t *testing.T, sql string) parse.Statement {
	t.Helper()
	s, err := parse.Parse(sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}
