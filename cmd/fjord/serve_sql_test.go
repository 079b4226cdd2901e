package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

// serveFor runs `fjord serve` with args on h's store until the returned
// stop is called, and returns its URL.
func serveFor(t *testing.T, h *harness, args ...string) (url string, stop func()) {
	t.Helper()
	var stderr lockedBuffer
	a := h.app(strings.NewReader(""), &bytes.Buffer{}, &stderr, map[string]string{"FJORD_LISTEN": "127.0.0.1:0", "FJORD_SQL": "true"})
	addrs := make(chan net.Addr, 1)
	a.listen = func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err == nil {
			addrs <- ln.Addr()
		}
		return ln, err
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), a) }()
	select {
	case addr := <-addrs:
		url = "http://" + addr.String()
	case err := <-done:
		cancel()
		t.Fatalf("serve ended: %v\n%s", err, stderr.String())
	}
	return url, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, stderr.String())
		}
	}
}

// TestServeSQL runs a persistent query and a push query over the API of
// `fjord serve`, and keeps the persistent query across a restart.
func TestServeSQL(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := newHarness(t)
	data := t.TempDir()
	url, stop := serveFor(t, h, "--data", data)
	sql := func(args ...string) string {
		t.Helper()
		return h.mustRun("", append([]string{"--server", url, "sql"}, args...)...)
	}
	out := sql("-e", `CREATE STREAM orders (id STRING KEY, customer STRING, amount DOUBLE) WITH (SOURCE='order-');
		CREATE TABLE totals AS SELECT customer, COUNT(*) AS n, SUM(amount) AS total FROM orders GROUP BY customer EMIT CHANGES`)
	if want := "stream orders created\ntable totals created, query CTAS_TOTALS_2 started\n"; out != want {
		t.Errorf("create over the server:\n%s\nwant:\n%s", out, want)
	}
	h.mustRun("", "append", "order-1", "Placed", `{"id":"1","customer":"c1","amount":5}`)
	h.mustRun("", "append", "order-2", "Placed", `{"id":"2","customer":"c1","amount":7}`)
	if out, want := sql("-e", "SELECT customer, n, total FROM totals AT POSITION 2"), "op  customer  n  total\n+   c1        2  12\n"; out != want {
		t.Errorf("pull query over the server:\n%s\nwant:\n%s", out, want)
	}
	if out, want := sql("--from-start", "-e", "SELECT id, amount FROM orders EMIT CHANGES LIMIT 2"), "op  id  amount\n+   1   5\n+  2  7\n"; out != want { // flushed per change
		t.Errorf("push query over the server:\n%s\nwant:\n%s", out, want)
	}
	if _, errOut, err := h.run("", "--server", url, "sql", "-e", "DESCRIBE nothing"); err == nil || !strings.Contains(errOut, "not_found") {
		t.Errorf("DESCRIBE nothing over the server: %v %q, want not_found", err, errOut)
	}

	// A push query as newline-delimited JSON: the row, then its change.
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/sql", strings.NewReader("SELECT customer, n FROM totals EMIT CHANGES"))
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(res.Body)
	var lines []string
	if sc.Scan() {
		lines = append(lines, sc.Text())
	}
	h.mustRun("", "append", "order-3", "Placed", `{"id":"3","customer":"c1","amount":1}`)
	if sc.Scan() {
		lines = append(lines, sc.Text())
	}
	want := []string{`{"op":"insert","row":{"customer":"c1","n":2},"position":2}`,
		`{"op":"update","row":{"customer":"c1","n":3},"old":{"customer":"c1","n":2},"position":3}`}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("NDJSON push query:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	cancel()
	res.Body.Close()
	stop()

	// After a restart the table is back and its query runs on.
	url, stop = serveFor(t, h, "--data", data)
	defer stop()
	h.mustRun("", "append", "order-4", "Placed", `{"id":"4","customer":"c1","amount":2}`)
	if out, want := sql("-e", "SELECT customer, n, total FROM totals AT POSITION 4"), "op  customer  n  total\n+   c1        4  15\n"; out != want {
		t.Errorf("pull query after the restart:\n%s\nwant:\n%s", out, want)
	}
	if out := sql("-e", "SHOW QUERIES"); !strings.Contains(out, "CTAS_TOTALS_2") {
		t.Errorf("SHOW QUERIES after the restart:\n%s", out)
	}
}

func TestServeSQLOff(t *testing.T) {
	h := newHarness(t)
	url, stop := serveFor(t, h, "--data", t.TempDir(), "--sql=false")
	defer stop()
	if _, errOut, err := h.run("", "--server", url, "sql", "-e", "SHOW STREAMS"); err == nil || !strings.Contains(errOut, "--sql=false") {
		t.Errorf("sql on a server without SQL: %v %q", err, errOut)
	}
}

// TestSQLScriptFile runs a script with -f; its error names the line of
// the failing statement.
func TestSQLScriptFile(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "setup.sql")
	os.WriteFile(script, []byte(`-- orders; and more
CREATE STREAM orders (id STRING KEY, note STRING)
  WITH (SOURCE='order-');

/* a table; */
CREATE TABLE notes AS
  SELECT id, LATEST_BY_OFFSET(note) AS note FROM orders GROUP BY id EMIT CHANGES;
DESCRIBE nothing;
`), 0o600)
	_, errOut, err := h.run("", "sql", "--state", filepath.Join(dir, "state"), "-f", script)
	if err == nil || !strings.Contains(errOut, script+":8: streamsql: not found: nothing") {
		t.Errorf("sql -f: %v\n%s", err, errOut)
	}
	out := h.mustRun("", "sql", "--state", filepath.Join(dir, "state"), "-e", "SHOW TABLES")
	if !strings.Contains(out, "NOTES") && !strings.Contains(out, "notes") {
		t.Errorf("the script's table is missing:\n%s", out)
	}
	if _, errOut, _ := h.run("", "sql", "--state", filepath.Join(dir, "state"), "-f", script, "-e", "SHOW TABLES"); !strings.Contains(errOut, "not both") {
		t.Errorf("-f with -e: %q", errOut)
	}
}

func TestSplitScript(t *testing.T) {
	got := splitScript("-- c;\nSELECT ';'\n FROM x;\n\n /* ; */ SHOW \"a;\"`b;`; ;  \n")
	want := []scriptStatement{{text: "SELECT ';'\n FROM x", line: 2, offset: 6}, {text: "SHOW \"a;\"`b;`", line: 5, offset: 36}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(scriptStatement{})); d != "" {
		t.Errorf("splitScript (-want +got):\n%s", d)
	}
}

func TestSQLHistory(t *testing.T) {
	var out bytes.Buffer
	file := filepath.Join(t.TempDir(), "fjord", "sql_history")
	sh := &sqlShell{a: &app{stdout: &out, stderr: &out}, history: file}
	sh.remember("SHOW STREAMS;\n")
	sh.remember("SELECT *\n  FROM totals AT POSITION 2;\n")
	sh.printHistory()
	want := "   1  SHOW STREAMS;\n   2  SELECT *\n  FROM totals AT POSITION 2;\n"
	if out.String() != want {
		t.Errorf("history:\n%s\nwant:\n%s", out.String(), want)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("history file: %v, %v; want mode 0600", st, err)
	}
}

// FuzzSplitScript: every statement is the script's text at its offset,
// on the line its offset is on, in order, starting with a token.
func FuzzSplitScript(f *testing.F) {
	for _, s := range []string{"SELECT 1; SELECT 2", "-- c;\nSHOW 'a;''b';\n/* ; */x", "'unterminated; \n", "/* open", "a;;\r\n;b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		prev := 0
		for _, st := range splitScript(script) {
			switch {
			case st.offset < prev || st.offset+len(st.text) > len(script) || script[st.offset:st.offset+len(st.text)] != st.text:
				t.Fatalf("statement %+v is not the script's text after %d", st, prev)
			case st.line != 1+strings.Count(script[:st.offset], "\n"):
				t.Fatalf("statement %+v: wrong line", st)
			case strings.TrimLeft(st.text, " \t\r\n") != st.text:
				t.Fatalf("statement %+v starts with space", st)
			}
			prev = st.offset + len(st.text)
		}
	})
}
