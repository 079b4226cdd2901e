package exec

import (
	"strings"
	"testing"

	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
)

// FuzzQuery plans any expression as a projection, a filter and a grouped
// aggregate's argument over a fixed source, and runs each plan that
// checks over a few events: nothing may panic, and a plan that checks
// must run.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"i + 1", "UCASE(str) || 'x'", "arr[i]", "CAST(str AS INT) / 0", "m['a'] IN (1, 2)",
		"CASE WHEN d > 1 THEN ts END", "SUBSTRING(str, -i, 2)", "EXTRACTJSONFIELD(str, '$.a[0]')", "dec * dec + i", "CAST(dec AS DECIMAL(3, 1)) % 2"} {
		f.Add(s)
	}
	src, err := plan.Create(mustParseF(f, `CREATE STREAM s (i INT, d DOUBLE, str STRING, ts TIMESTAMP, arr ARRAY<INT>, m MAP<STRING, INT>, st STRUCT<a INT>, dec DECIMAL(6, 2)) WITH (SOURCE='s-')`).(*parse.CreateSource))
	if err != nil {
		f.Fatal(err)
	}
	cat := catalog{"S": src}
	events := []Event{
		{Stream: "s-1", Type: "E", Time: 1000, Position: 1, Version: 1, Data: []byte(`{"i":7,"d":2.5,"str":" Hello ","ts":"2026-03-04T05:06:07Z","arr":[3,1,2],"m":{"a":1},"st":{"a":-1},"dec":1234.56}`)},
		{Stream: "s-1", Type: "E", Time: 2000, Position: 2, Version: 2, Data: []byte(`{"i":-9223372036854775808,"d":-0.0,"str":"{\"a\":[1]}","arr":[],"m":{},"dec":"-0.01"}`)},
		{Stream: "s-1", Type: "E", Time: 3000, Position: 3, Version: 3, Data: []byte(`{}`)},
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if strings.ContainsAny(expr, ";") {
			return
		}
		for _, sql := range []string{
			"SELECT " + expr + " AS x FROM s EMIT CHANGES",
			"SELECT i FROM s WHERE " + expr + " EMIT CHANGES",
			"SELECT str, COUNT(*), COLLECT_LIST(" + expr + ") FROM s GROUP BY str EMIT CHANGES",
			"SELECT " + expr + " AS k, MAX(d) FROM s WINDOW HOPPING (SIZE 2 SECONDS, ADVANCE BY 1 SECOND) GROUP BY " + expr + " EMIT CHANGES",
		} {
			stmt, err := parse.Parse(sql)
			if err != nil {
				continue
			}
			sel, ok := stmt.(*parse.Select)
			if !ok {
				continue
			}
			q, err := plan.Select(sel, cat)
			if err != nil {
				continue
			}
			p := New(q, &ErrorLog{})
			for i := range events {
				p.Process(events[i : i+1])
			}
			p.Watermark(1 << 40)
		}
	})
}

func mustParseF(f *testing.F, sql string) parse.Statement {
	s, err := parse.Parse(sql)
	if err != nil {
		f.Fatal(err)
	}
	return s
}
