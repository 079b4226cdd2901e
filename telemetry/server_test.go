package telemetry_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/server"
	"github.com/fjord-data/fjord/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const token = "metrics-token-0123456789"

// TestServerMetrics drives a server with metrics and auth, and reads
// /metrics: appends (ok and failed), reads, a live SSE subscriber that
// stops reading, and the lag it shows.
func TestServerMetrics(t *testing.T) {
	reg := telemetry.New()
	m, err := telemetry.NewServerMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := telemetry.NewServerMetrics(reg); err == nil {
		t.Error("registering the server metrics twice succeeded")
	}
	auth, err := server.ParseAuth([]byte(`{"tokens": [
		{"name": "ops", "token": "` + token + `", "rules": [{"allow": "admin", "on": "$all"}]},
		{"name": "orders", "token": "orders-token-0123456789", "rules": [{"allow": "read", "on": "order-"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	st := eventstore.New(memstore.New(), nil)
	defer st.Close()
	srv := server.New(st, &server.Options{Hooks: m.Hooks(), Metrics: reg.Handler(), Auth: auth})
	if err := m.WatchSubscribers(srv.SubscriberStats); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	call := func(method, path, tok, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	drain := func(res *http.Response) { io.Copy(io.Discard, res.Body); res.Body.Close() }

	// A subscriber that reads the caught-up message, then stops reading.
	sub := call("GET", "/v1/subscribe?from=start", token, "")
	defer sub.Body.Close()
	sc := bufio.NewScanner(sub.Body)
	for sc.Scan() && sc.Text() != "event: caught-up" {
	}
	const ok = `{"appends":[{"stream":"order-1","events":[{"type":"A","data":"e30="},{"type":"B","data":"e30="}]}]}`
	for range 3 {
		drain(call("POST", "/fjord.eventstore.v1.EventStoreService/Append", token, ok))
	}
	drain(call("POST", "/fjord.eventstore.v1.EventStoreService/Append", token,
		`{"appends":[{"stream":"order-1","expected":{"noStream":{}},"events":[{"type":"A"}]}]}`))
	drain(call("POST", "/fjord.eventstore.v1.EventStoreService/ReadStream", token, `{"stream":"order-1"}`))

	for _, tc := range []struct {
		tok  string
		want int
	}{{"", http.StatusUnauthorized}, {"orders-token-0123456789", http.StatusForbidden}} {
		res := call("GET", "/metrics", tc.tok, "")
		drain(res)
		if res.StatusCode != tc.want {
			t.Errorf("GET /metrics with token %q: %d, want %d", tc.tok, res.StatusCode, tc.want)
		}
	}
	res := call("GET", "/metrics", token, "")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	got := map[string]string{}
	for line := range strings.Lines(string(body)) {
		if name, value, ok := strings.Cut(strings.TrimSpace(line), " "); ok && strings.HasPrefix(name, "fjord_") {
			got[name] = value
		}
	}
	want := map[string]string{
		`fjord_server_appends_total{code="ok"}`:                   "3",
		`fjord_server_appends_total{code="failed_precondition"}`:  "1",
		`fjord_server_appended_events_total`:                      "6",
		`fjord_server_appended_bytes_total`:                       "12",
		`fjord_server_append_duration_seconds_count`:              "4",
		`fjord_server_reads_total{code="ok",method="ReadStream"}`: "1",
		`fjord_server_read_events_total{method="ReadStream"}`:     "6",
		`fjord_server_subscribers{protocol="sse"}`:                "1",
		`fjord_store_head_position`:                               "6",
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %q, want %q", name, got[name], v)
		}
	}
	// The subscriber may have been sent some of the 6 events before its
	// buffers filled, but it lags by at least 0 and at most 6; with one
	// subscriber, max and sum agree.
	if diff := cmp.Diff(got["fjord_server_subscriber_lag_max_events"], got["fjord_server_subscriber_lag_sum_events"]); diff != "" {
		t.Errorf("lag max and sum differ with one subscriber:\n%s", diff)
	}
	if _, ok := got["fjord_server_subscriber_lag_max_events"]; !ok {
		t.Errorf("no lag metric in:\n%s", body)
	}
}
