package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	sqlv1 "github.com/fjord-data/fjord/api/fjord/streamsql/v1"
	"github.com/fjord-data/fjord/api/fjord/streamsql/v1/streamsqlv1connect"
	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/server"
	"github.com/fjord-data/fjord/streamsql"
)

// startSQL serves a memstore with a running streamsql engine.
func startSQL(t *testing.T, opts *server.Options) *testServer {
	t.Helper()
	st := newTestStore()
	e, err := streamsql.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts == nil {
		opts = &server.Options{}
	}
	opts.SQL = e
	ts := startOn(t, st, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() { // before the server's cleanup, which closes the store
		cancel()
		if err := errors.Join(<-done, e.Close()); err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	return ts
}

func (ts *testServer) sqlClient(opts ...connect.ClientOption) streamsqlv1connect.StreamSQLServiceClient {
	return streamsqlv1connect.NewStreamSQLServiceClient(ts.h2, ts.url, append([]connect.ClientOption{connect.WithGRPC()}, opts...)...)
}

const (
	ordersDDL = `CREATE STREAM orders (id STRING KEY, customer STRING, amount DECIMAL(10,2)) WITH (SOURCE='order-')`
	totalsSQL = `CREATE TABLE totals AS SELECT customer, COUNT(*) AS n, SUM(amount) AS total FROM orders GROUP BY customer EMIT CHANGES`
)

// setupTotals defines orders and totals and appends two orders of c1; it
// returns the last position.
func (ts *testServer) setupTotals(t *testing.T, c streamsqlv1connect.StreamSQLServiceClient) uint64 {
	t.Helper()
	for _, sql := range []string{ordersDDL, totalsSQL} {
		if _, err := c.Execute(t.Context(), connect.NewRequest(&sqlv1.ExecuteRequest{Sql: sql})); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	ts.appendOrder(t, "1", "c1", "10.50")
	return ts.appendOrder(t, "2", "c1", "2.25")
}

func (ts *testServer) appendOrder(t *testing.T, id, customer, amount string) uint64 {
	t.Helper()
	res, err := ts.store.Append(t.Context(), eventstore.StreamID("order-"+id), eventstore.Any, eventstore.Event{Type: "Placed",
		Data: fmt.Appendf(nil, `{"id":%q,"customer":%q,"amount":%s}`, id, customer, amount)})
	if err != nil {
		t.Fatal(err)
	}
	return uint64(res.Position)
}

func dec(s string) *sqlv1.Value { return &sqlv1.Value{Kind: &sqlv1.Value_Decimal{Decimal: s}} }
func str(s string) *sqlv1.Value { return &sqlv1.Value{Kind: &sqlv1.Value_String_{String_: s}} }
func num(n int64) *sqlv1.Value  { return &sqlv1.Value{Kind: &sqlv1.Value_Int{Int: n}} }

func TestSQLConnect(t *testing.T) {
	ts := startSQL(t, nil)
	c := ts.sqlClient()
	ctx := t.Context()
	p := ts.setupTotals(t, c)

	res, err := c.Execute(ctx, connect.NewRequest(&sqlv1.ExecuteRequest{Sql: "DESCRIBE totals;"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Msg.GetColumns(), []string{"column", "type", "key"}; !cmp.Equal(got, want) || len(res.Msg.GetRows()) == 0 {
		t.Errorf("DESCRIBE: columns %v rows %v; want columns %v and rows", got, res.Msg.GetRows(), want)
	}

	// Pull query, reading its own write.
	pull, err := c.Query(ctx, connect.NewRequest(&sqlv1.QueryRequest{Sql: fmt.Sprintf("SELECT * FROM totals WHERE customer = 'c1' AT POSITION %d", p)}))
	if err != nil {
		t.Fatal(err)
	}
	var got []*sqlv1.QueryResponse
	for pull.Receive() {
		got = append(got, pull.Msg())
	}
	if err := pull.Err(); err != nil {
		t.Fatalf("pull query: %v", err)
	}
	want := []*sqlv1.QueryResponse{{
		Columns: []*sqlv1.Column{{Name: "customer", Type: "STRING"}, {Name: "n", Type: "BIGINT"}, {Name: "total", Type: "DECIMAL(18, 2)"}},
		Change:  &sqlv1.Change{Op: sqlv1.Op_OP_INSERT, Row: []*sqlv1.Value{str("c1"), num(2), dec("12.75")}, Position: p},
	}}
	if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
		t.Errorf("pull query (-want +got):\n%s", d)
	}

	// Push query on the table: its current row, then its changes.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	push, err := c.Query(pctx, connect.NewRequest(&sqlv1.QueryRequest{Sql: "SELECT customer, n FROM totals EMIT CHANGES"}))
	if err != nil {
		t.Fatal(err)
	}
	defer push.Close()
	if !push.Receive() {
		t.Fatalf("push query: %v", push.Err())
	}
	p3 := ts.appendOrder(t, "3", "c1", "1")
	if !push.Receive() {
		t.Fatalf("push query: %v", push.Err())
	}
	wantChange := &sqlv1.Change{Op: sqlv1.Op_OP_UPDATE, Row: []*sqlv1.Value{str("c1"), num(3)}, Old: []*sqlv1.Value{str("c1"), num(2)}, Position: p3}
	if d := cmp.Diff(wantChange, push.Msg().GetChange(), protocmp.Transform()); d != "" {
		t.Errorf("push query's change (-want +got):\n%s", d)
	}
	if len(push.Msg().GetColumns()) != 0 {
		t.Errorf("columns sent again: %v", push.Msg().GetColumns())
	}

	id := res.Msg.GetQueryId() // DESCRIBE has none; ask SHOW QUERIES
	show, err := c.Execute(ctx, connect.NewRequest(&sqlv1.ExecuteRequest{Sql: "SHOW QUERIES"}))
	if err != nil || len(show.Msg.GetRows()) == 0 {
		t.Fatalf("SHOW QUERIES: %v %v", show, err)
	}
	id = show.Msg.GetRows()[0].GetValues()[0]
	st, err := c.Status(ctx, connect.NewRequest(&sqlv1.StatusRequest{QueryId: id}))
	if err != nil {
		t.Fatalf("Status(%s): %v", id, err)
	}
	if st.Msg.GetDecodeErrors() != 0 || st.Msg.GetRuntimeErrors() != 0 {
		t.Errorf("Status(%s) = %v, want no errors", id, st.Msg)
	}
}

func TestSQLErrors(t *testing.T) {
	ts := startSQL(t, &server.Options{MaxStatementBytes: 200})
	c := ts.sqlClient()
	ts.setupTotals(t, c)
	tests := []struct {
		name, sql string
		query     bool
		code      connect.Code
		status    int
		msg       string
	}{
		{"syntax", "SELEC 1", false, connect.CodeInvalidArgument, 400, "line 1, column 1"},
		{"syntax on line 2", "SELECT *\nFROM WHERE", true, connect.CodeInvalidArgument, 400, "line 2, column"},
		{"type", "SELECT customer + 1 FROM orders EMIT CHANGES", true, connect.CodeInvalidArgument, 400, "line 1"},
		{"two statements", "SHOW STREAMS; SHOW TABLES", false, connect.CodeInvalidArgument, 400, "one statement"},
		{"select to Execute", "SELECT * FROM totals", false, connect.CodeInvalidArgument, 0, "Query"},
		{"DDL to Query", "SHOW STREAMS", true, connect.CodeInvalidArgument, 0, "Execute"},
		{"unknown source", "DESCRIBE nothing", false, connect.CodeNotFound, 404, "nothing"},
		{"unknown source in a query", "SELECT * FROM nothing EMIT CHANGES", true, connect.CodeNotFound, 404, "line 1, column 15: unknown stream or table nothing"},
		{"unknown query", "TERMINATE nope", false, connect.CodeNotFound, 404, "nope"},
		{"exists", ordersDDL, false, connect.CodeAlreadyExists, 409, "exists"},
		{"in use", "DROP STREAM orders", false, connect.CodeFailedPrecondition, 409, "in use"},
		{"too big", "SHOW STREAMS " + strings.Repeat(" ", 200), false, connect.CodeInvalidArgument, 413, "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.query {
				var s *connect.ServerStreamForClient[sqlv1.QueryResponse]
				if s, err = c.Query(t.Context(), connect.NewRequest(&sqlv1.QueryRequest{Sql: tc.sql})); err == nil {
					for s.Receive() {
					}
					err = s.Err()
				}
			} else {
				_, err = c.Execute(t.Context(), connect.NewRequest(&sqlv1.ExecuteRequest{Sql: tc.sql}))
			}
			if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Connect: %v; want code %v and a message containing %q", err, tc.code, tc.msg)
			}
			if tc.status == 0 {
				return
			}
			res, body := ts.postSQL(t, t.Context(), tc.sql, "", "")
			if res.StatusCode != tc.status || !strings.Contains(body, tc.msg) {
				t.Errorf("POST /v1/sql: %s %q; want status %d and a message containing %q", res.Status, body, tc.status, tc.msg)
			}
		})
	}
	if _, err := c.Status(t.Context(), connect.NewRequest(&sqlv1.StatusRequest{QueryId: "nope"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("Status of an unknown query: %v, want NOT_FOUND", err)
	}
}

func TestSQLOff(t *testing.T) {
	ts := start(t, nil)
	_, err := ts.sqlClient().Execute(t.Context(), connect.NewRequest(&sqlv1.ExecuteRequest{Sql: "SHOW STREAMS"}))
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Errorf("Execute without SQL: %v, want UNAVAILABLE", err)
	}
}

// postSQL posts a statement and reads the whole answer.
func (ts *testServer) postSQL(t *testing.T, ctx context.Context, sql, accept, token string) (*http.Response, string) {
	t.Helper()
	return ts.postSQLAt(t, ctx, "/v1/sql", sql, accept, token)
}

func (ts *testServer) postSQLAt(t *testing.T, ctx context.Context, path, sql, accept, token string) (*http.Response, string) {
	t.Helper()
	res := ts.openSQLAt(t, ctx, path, sql, accept, token)
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func (ts *testServer) openSQL(t *testing.T, ctx context.Context, sql, accept, token string) *http.Response {
	t.Helper()
	return ts.openSQLAt(t, ctx, "/v1/sql", sql, accept, token)
}

func (ts *testServer) openSQLAt(t *testing.T, ctx context.Context, path, sql, accept, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", ts.url+path, strings.NewReader(sql))
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := ts.h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func TestSQLHTTP(t *testing.T) {
	ts := startSQL(t, nil)
	p := ts.setupTotals(t, ts.sqlClient())

	res, body := ts.postSQL(t, t.Context(), "SHOW TABLES", "", "")
	var result map[string]any
	if err := json.Unmarshal([]byte(body), &result); err != nil || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("SHOW TABLES: %s %q: %v", res.Header.Get("Content-Type"), body, err)
	}
	if rows, _ := result["rows"].([]any); len(rows) != 1 {
		t.Errorf("SHOW TABLES rows = %v, want totals", result["rows"])
	}

	res, body = ts.postSQL(t, t.Context(), fmt.Sprintf("SELECT * FROM totals AT POSITION %d", p), "application/x-ndjson", "")
	want := fmt.Sprintf(`{"op":"insert","row":{"customer":"c1","n":2,"total":"12.75"},"position":%d}`+"\n", p)
	if res.Header.Get("Content-Type") != "application/x-ndjson" || body != want {
		t.Errorf("NDJSON pull query: %s %q, want %q", res.Header.Get("Content-Type"), body, want)
	}

	// A push query as Server-Sent Events.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	res = ts.openSQL(t, ctx, "SELECT customer, n FROM totals EMIT CHANGES", "text/event-stream", "")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("SSE push query: %s %s", res.Status, res.Header.Get("Content-Type"))
	}
	s := &sseStream{res: res, sc: bufio.NewScanner(res.Body)}
	first := s.next(t)
	p3 := ts.appendOrder(t, "3", "c1", "1")
	second := s.next(t)
	got := []sseMessage{first, second}
	wantMsgs := []sseMessage{
		{ID: fmt.Sprint(p), Event: "change", Data: `{"op":"insert","row":{"customer":"c1","n":2},"position":` + fmt.Sprint(p) + `}`},
		{ID: fmt.Sprint(p3), Event: "change", Data: `{"op":"update","row":{"customer":"c1","n":3},"old":{"customer":"c1","n":2},"position":` + fmt.Sprint(p3) + `}`},
	}
	if d := cmp.Diff(wantMsgs, got); d != "" {
		t.Errorf("SSE push query (-want +got):\n%s", d)
	}
}

func TestSQLAuth(t *testing.T) {
	auth, err := server.ParseAuth([]byte(authFile()))
	if err != nil {
		t.Fatal(err)
	}
	ts := startSQL(t, &server.Options{Auth: auth})
	ts.appendOrder(t, "1", "c1", "1")
	tests := []struct {
		token, sql string
		query      bool
		code       connect.Code // 0: ok
		status     int
	}{
		{"", "SHOW STREAMS", false, connect.CodeUnauthenticated, 401},
		{tokExpired, "SHOW STREAMS", false, connect.CodeUnauthenticated, 401},
		{tokReader, "SHOW STREAMS", false, 0, 200},
		{tokReader, ordersDDL, false, connect.CodePermissionDenied, 403},
		{tokOrders, "SHOW STREAMS", false, connect.CodePermissionDenied, 403}, // read on order- only
		{tokAdmin, strings.Replace(ordersDDL, "STREAM", "STREAM IF NOT EXISTS", 1), false, 0, 200},
		{tokReader, "DESCRIBE orders", false, 0, 200},
		{tokReader, "EXPLAIN SELECT * FROM orders EMIT CHANGES", false, 0, 200},
		{tokReader, "DROP STREAM IF EXISTS nothing", false, connect.CodePermissionDenied, 403},
		{tokReader, "TERMINATE nothing", false, connect.CodePermissionDenied, 403},
		{tokOrders, "SELECT * FROM orders EMIT CHANGES LIMIT 1", true, connect.CodePermissionDenied, 403},
		{tokReader, "SELECT * FROM orders EMIT CHANGES LIMIT 1", true, 0, 200},
	}
	for _, tc := range tests {
		c := ts.sqlClient(bearer(tc.token))
		var err error
		if tc.query {
			// From the start, LIMIT 1: the query ends after one change.
			var s *connect.ServerStreamForClient[sqlv1.QueryResponse]
			if s, err = c.Query(t.Context(), connect.NewRequest(&sqlv1.QueryRequest{Sql: tc.sql, FromStart: true})); err == nil {
				for s.Receive() {
				}
				err = s.Err()
				s.Close()
			}
		} else {
			_, err = c.Execute(t.Context(), connect.NewRequest(&sqlv1.ExecuteRequest{Sql: tc.sql}))
		}
		if tc.code == 0 && err != nil || tc.code != 0 && connect.CodeOf(err) != tc.code {
			t.Errorf("%q as %q: %v, want %v", tc.sql, tc.token, err, tc.code)
		}
		res, body := ts.postSQLAt(t, t.Context(), "/v1/sql?from=start", tc.sql+";", "", tc.token)
		if res.StatusCode != tc.status {
			t.Errorf("POST %q as %q: %s %q, want %d", tc.sql, tc.token, res.Status, body, tc.status)
		}
	}
}

// TestSQLDrainAndLimit: a server runs at most MaxSQLQueries queries, and
// draining ends push queries with UNAVAILABLE.
func TestSQLDrainAndLimit(t *testing.T) {
	ts := startSQL(t, &server.Options{MaxSQLQueries: 2})
	c := ts.sqlClient()
	ts.setupTotals(t, c)
	const push = "SELECT customer, n FROM totals EMIT CHANGES"
	rpc, err := c.Query(t.Context(), connect.NewRequest(&sqlv1.QueryRequest{Sql: push}))
	if err != nil {
		t.Fatal(err)
	}
	defer rpc.Close()
	if !rpc.Receive() {
		t.Fatal(rpc.Err())
	}
	res := ts.openSQL(t, t.Context(), push, "", "")
	nd := bufio.NewScanner(res.Body)
	if !nd.Scan() {
		t.Fatalf("NDJSON push query: %v", nd.Err())
	}

	third, err := c.Query(t.Context(), connect.NewRequest(&sqlv1.QueryRequest{Sql: push}))
	if err == nil {
		third.Receive()
		err = third.Err()
	}
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("a third query: %v, want RESOURCE_EXHAUSTED", err)
	}
	if res, body := ts.postSQL(t, t.Context(), push, "", ""); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a third query over HTTP: %s %q, want 429", res.Status, body)
	}

	ts.srv.Drain()
	if rpc.Receive() || connect.CodeOf(rpc.Err()) != connect.CodeUnavailable {
		t.Errorf("push query after Drain: %v, want UNAVAILABLE", rpc.Err())
	}
	var last map[string]map[string]string
	if !nd.Scan() || json.Unmarshal(nd.Bytes(), &last) != nil || last["error"]["code"] != "unavailable" {
		t.Errorf("NDJSON push query after Drain ended with %q, want an unavailable error", nd.Text())
	}
}

// TestSQLPushAnswersAtOnce: a push query's call returns (with headers)
// before its first change, over gRPC on HTTP/2 and Connect on HTTP/1.1.
func TestSQLPushAnswersAtOnce(t *testing.T) {
	ts := startSQL(t, nil)
	c := ts.sqlClient()
	ts.setupTotals(t, c)
	clients := map[string]streamsqlv1connect.StreamSQLServiceClient{"grpc": c, "connect": streamsqlv1connect.NewStreamSQLServiceClient(ts.h1, ts.url)}
	for name, cl := range clients {
		s, err := cl.Query(t.Context(), connect.NewRequest(&sqlv1.QueryRequest{Sql: "SELECT id FROM orders EMIT CHANGES"}))
		if err != nil {
			t.Fatalf("%s: Query: %v", name, err)
		}
		if _, err := s.ResponseHeader(), s.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := ts.appendOrder(t, "9"+name, "c9", "1")
		if !s.Receive() || s.Msg().GetChange().GetPosition() != p {
			t.Errorf("%s: first change %v, %v; want the order at %d", name, s.Msg(), s.Err(), p)
		}
		s.Close()
	}
}
