package main

import (
	"strings"
	"testing"
)

func TestSQL(t *testing.T) {
	h := newHarness(t)
	state := t.TempDir()
	sql := func(stdin string, args ...string) string {
		t.Helper()
		return h.mustRun(stdin, append([]string{"sql", "--state", state}, args...)...)
	}
	out := sql("", "-e", `CREATE STREAM orders (id STRING KEY, customer STRING, amount DOUBLE) WITH (SOURCE='order-');
		CREATE TABLE totals AS SELECT customer, COUNT(*) AS n, SUM(amount) AS total FROM orders GROUP BY customer EMIT CHANGES`)
	want := "stream orders created\ntable totals created, query CTAS_TOTALS_2 started\n"
	if out != want {
		t.Errorf("create:\n%s\nwant:\n%s", out, want)
	}
	h.mustRun("", "append", "order-1", "Placed", `{"id":"1","customer":"c1","amount":5}`)
	h.mustRun("", "append", "order-2", "Placed", `{"id":"2","customer":"c1","amount":7}`)
	// Statements from standard input, across lines; the definitions and
	// the table's state came back from the state directory.
	out = sql("SELECT customer, n, total\n  FROM totals AT POSITION 2;\nSELECT id FROM orders EMIT CHANGES LIMIT 1;\n", "--from-start")
	want = "op  customer  n  total\n+   c1        2  12\nop  id\n+   1\n"
	if out != want {
		t.Errorf("queries:\n%s\nwant:\n%s", out, want)
	}
	if _, _, err := h.run("", "sql", "--state", state, "-e", "SELECT nope FROM totals"); err == nil || !strings.Contains(err.Error(), "line 1, column 8: unknown column nope") {
		t.Errorf("bad query: %v", err)
	}
}
