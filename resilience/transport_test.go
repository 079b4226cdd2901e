package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/resilience"
)

// fakeServer answers with the next of its statuses ("503", "200",
// "503 retry-after=2", "error" for a connection error) and records what
// each attempt sent.
type fakeServer struct {
	mu      sync.Mutex
	replies []string
	sent    []string // method, body and Idempotency-Key of each attempt
	at      []time.Time
}

func (f *fakeServer) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body := ""
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		body = string(b)
	}
	f.sent = append(f.sent, strings.TrimSpace(fmt.Sprintf("%s %s %s", r.Method, body, r.Header.Get(resilience.IdempotencyKeyHeader))))
	f.at = append(f.at, time.Now())
	reply := f.replies[0]
	if len(f.replies) > 1 {
		f.replies = f.replies[1:]
	}
	if reply == "error" {
		return nil, errDown
	}
	status, ra, _ := strings.Cut(reply, " retry-after=")
	var code int
	fmt.Sscan(status, &code)
	resp := &http.Response{StatusCode: code, Header: http.Header{}, Request: r,
		Body: &ctxBody{ctx: r.Context(), r: strings.NewReader("reply " + status)}}
	if ra != "" {
		resp.Header.Set("Retry-After", ra)
	}
	return resp, nil
}

// ctxBody fails reads once the request's context has ended, as a real
// transport's body does.
type ctxBody struct {
	ctx context.Context
	r   io.Reader
}

func (b *ctxBody) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	return b.r.Read(p)
}
func (b *ctxBody) Close() error { return nil }

func TestTransport(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		body    string
		key     string // Idempotency-Key set by the caller
		gen     bool   // TransportOptions.IdempotencyKeys
		replies []string
		want    string // status and body the caller gets, or the error
		sent    []string
	}{
		{"GET retried after 503", "GET", "", "", false, []string{"503", "200"}, "200 reply 200", []string{"GET", "GET"}},
		{"last failure returned as response", "GET", "", "", false, []string{"503"}, "503 reply 503", []string{"GET", "GET", "GET"}},
		{"connection errors retried", "GET", "", "", false, []string{"error", "200"}, "200 reply 200", []string{"GET", "GET"}},
		{"429 retried", "PUT", "x", "", false, []string{"429", "204"}, "204 reply 204", []string{"PUT x", "PUT x"}},
		{"404 is an answer", "GET", "", "", false, []string{"404", "200"}, "404 reply 404", []string{"GET"}},
		{"501 not retried", "GET", "", "", false, []string{"501", "200"}, "501 reply 501", []string{"GET"}},
		{"POST tried once", "POST", "order", "", false, []string{"503", "200"}, "503 reply 503", []string{"POST order"}},
		{"POST with a key retried, body rewound", "POST", "order", "k1", false, []string{"503", "error", "201"}, "201 reply 201",
			[]string{"POST order k1", "POST order k1", "POST order k1"}},
		{"POST connection error not retried", "POST", "order", "", false, []string{"error"}, "error: connection refused", []string{"POST order"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &fakeServer{replies: tt.replies}
				tr := must(resilience.NewTransport(srv, resilience.TransportOptions{IdempotencyKeys: tt.gen},
					resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond}, resilience.Timeout(time.Second)))
				req, _ := http.NewRequest(tt.method, "http://dep.example/x", strings.NewReader(tt.body))
				if tt.body == "" {
					req.Body, req.GetBody = http.NoBody, nil
				}
				if tt.key != "" {
					req.Header.Set(resilience.IdempotencyKeyHeader, tt.key)
				}
				resp, err := tr.RoundTrip(req)
				var got string
				if err != nil {
					got = "error: " + err.Error()
				} else {
					b, err := io.ReadAll(resp.Body) // after RoundTrip: the attempt's context must still be alive
					resp.Body.Close()
					got = fmt.Sprintf("%d %s%v", resp.StatusCode, b, errString(err))
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.sent, srv.sent); diff != "" {
					t.Errorf("attempts (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

func TestTransportIdempotencyKeysAndRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &fakeServer{replies: []string{"503 retry-after=2", "503", "200"}}
		tr := must(resilience.NewTransport(srv, resilience.TransportOptions{IdempotencyKeys: true},
			resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond}))
		req, _ := http.NewRequest("POST", "http://dep.example/orders", strings.NewReader("order"))
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("got %v, %v", resp, err)
		}
		resp.Body.Close()
		if req.Header.Get(resilience.IdempotencyKeyHeader) != "" {
			t.Error("the caller's request was modified")
		}
		key := strings.Fields(srv.sent[0])[2]
		if len(key) != 32 || srv.sent[1] != "POST order "+key || srv.sent[2] != "POST order "+key {
			t.Errorf("attempts %q: want one generated key on every attempt", srv.sent)
		}
		if d := srv.at[1].Sub(srv.at[0]); d < 2*time.Second {
			t.Errorf("second attempt %v after the first, want at least the Retry-After of 2s", d)
		}
	})
}

func TestTransportBreakerPerHostAndStaleFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &fakeServer{replies: []string{"error"}}
		reg := must(resilience.NewBreakers(10, resilience.BreakerOptions{WindowCalls: 2, MinCalls: 2}))
		var stale []string
		fb := resilience.Fallback[*http.Response]{Func: func(ctx context.Context, err error) (*http.Response, error) {
			r := resilience.RequestFrom(ctx)
			if !errors.Is(err, resilience.ErrOpen) {
				return nil, err
			}
			stale = append(stale, r.URL.String())
			return &http.Response{StatusCode: 200, Header: http.Header{"Warning": {`110 - "Response is Stale"`}}, Body: http.NoBody, Request: r}, nil
		}}
		tr := must(resilience.NewTransport(srv, resilience.TransportOptions{}, fb, reg))
		get := func(url string) string {
			req, _ := http.NewRequest("GET", url, nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				return "error"
			}
			resp.Body.Close()
			return fmt.Sprint(resp.StatusCode)
		}
		var got []string
		for _, u := range []string{"http://a/1", "http://a/2", "http://a/3", "http://b/1"} {
			got = append(got, get(u))
		}
		if diff := cmp.Diff([]string{"error", "error", "200", "error"}, got); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"http://a/3"}, stale); diff != "" {
			t.Errorf("served stale (-want +got):\n%s", diff)
		}
		if s := reg.Get("a").State(); s != resilience.StateOpen || reg.Get("b").State() != resilience.StateClosed {
			t.Errorf("breaker a %v, b %v; want open, closed", s, reg.Get("b").State())
		}
	})
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestTransportHedgesOnlyRetryableRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var sent []string
		slow := rtFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			sent = append(sent, r.Method)
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
		})
		tr := must(resilience.NewTransport(slow, resilience.TransportOptions{}, resilience.Hedge{Delay: 10 * time.Millisecond}))
		for _, method := range []string{"GET", "POST"} {
			req, _ := http.NewRequest(method, "http://dep.example/", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if diff := cmp.Diff([]string{"GET", "GET", "POST"}, sent); diff != "" {
			t.Errorf("attempts (-want +got):\n%s", diff)
		}
	})
}

func TestTransportClosesBodyOfRefusedRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &fakeServer{replies: []string{"error"}}
		br := must(resilience.NewBreaker("dep", resilience.BreakerOptions{WindowCalls: 1, MinCalls: 1}))
		tr := must(resilience.NewTransport(srv, resilience.TransportOptions{}, br))
		for i := range 2 {
			body := &closeRecorder{Reader: strings.NewReader("x")}
			req, _ := http.NewRequest("POST", "http://dep.example/", body)
			_, err := tr.RoundTrip(req)
			if i == 1 && (!errors.Is(err, resilience.ErrOpen) || !body.closed) {
				t.Errorf("refused request: %v, body closed %v; want ErrOpen and the body closed", err, body.closed)
			}
		}
	})
}

// TestTransportHedgeWinnerBodyReadable: the winning attempt's context stays
// alive until its body is read; the losing attempt's is cancelled.
func TestTransportHedgeWinnerBodyReadable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		var loserCancelled atomic.Bool
		rt := rtFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				<-r.Context().Done()
				loserCancelled.Store(true)
				return nil, r.Context().Err()
			}
			return &http.Response{StatusCode: 200, Body: &ctxBody{ctx: r.Context(), r: strings.NewReader("hedged")}, Request: r}, nil
		})
		tr := must(resilience.NewTransport(rt, resilience.TransportOptions{}, resilience.Timeout(time.Second),
			resilience.Hedge{Delay: 10 * time.Millisecond}, resilience.Timeout(500*time.Millisecond)))
		req, _ := http.NewRequest("GET", "http://dep.example/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hedged" || err != nil || !loserCancelled.Load() {
			t.Errorf("body %q, %v, loser cancelled %v; want the hedged body and the loser cancelled", body, err, loserCancelled.Load())
		}
	})
}
