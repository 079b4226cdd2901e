package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
	"github.com/fjord-data/fjord/server"
)

const (
	tokAdmin   = "admin-token-0123456789"
	tokReader  = "reader-token-0123456789" // read on $all
	tokOrders  = "orders-token-0123456789" // read+write on order-, read on category cust via "cust-"
	tokExpired = "expired-token-0123456789"
	tokHashed  = "hashed-token-0123456789" // given as its SHA-256
)

func authFile() string {
	sum := sha256.Sum256([]byte(tokHashed))
	return fmt.Sprintf(`{"tokens": [
	  {"name": "admin", "token": %q, "rules": [{"allow": "admin", "on": "$all"}]},
	  {"name": "reader", "token": %q, "expires": "2999-01-01T00:00:00Z", "rules": [{"allow": "read", "on": "$all"}]},
	  {"name": "orders", "token": %q, "rules": [
	    {"allow": "read", "on": "order-"}, {"allow": "write", "on": "order-"}, {"allow": "read", "on": "cust-"}]},
	  {"name": "expired", "token": %q, "expires": "2000-01-01T00:00:00Z", "rules": [{"allow": "admin", "on": "$all"}]},
	  {"name": "hashed", "sha256": %q, "rules": [{"allow": "write", "on": "order-"}]}
	]}`, tokAdmin, tokReader, tokOrders, tokExpired, hex.EncodeToString(sum[:]))
}

func startWithAuth(t *testing.T) *testServer {
	t.Helper()
	auth, err := server.ParseAuth([]byte(authFile()))
	if err != nil {
		t.Fatal(err)
	}
	return start(t, &server.Options{Auth: auth})
}

// bearer sets an Authorization header on every call.
func bearer(token string) connect.ClientOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if token != "" {
				req.Header().Set("Authorization", "Bearer "+token)
			}
			return next(ctx, req)
		}
	}), streamBearer(token))
}

type streamBearer string

func (s streamBearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }
func (s streamBearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if s != "" {
			conn.RequestHeader().Set("Authorization", "Bearer "+string(s))
		}
		return conn
	}
}
func (s streamBearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// firstItem opens a subscription and returns its first item or error.
func firstItem(ctx context.Context, c interface {
	Subscribe(context.Context, *connect.Request[esv1.SubscribeRequest]) (*connect.ServerStreamForClient[esv1.SubscribeResponse], error)
}, req *esv1.SubscribeRequest) (*esv1.SubscribeResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.Subscribe(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if !s.Receive() {
		return nil, s.Err()
	}
	return s.Msg(), nil
}

func TestAuthRPC(t *testing.T) {
	ts := startWithAuth(t)
	admin := ts.client(true, bearer(tokAdmin))
	for _, stream := range []string{"order-1", "cust-1", "invoice-1"} {
		if _, err := admin.Append(t.Context(), connect.NewRequest(appendReq(stream, nil, ev("Created")))); err != nil {
			t.Fatalf("admin append to %s: %v", stream, err)
		}
	}
	type call func(ctx context.Context, c callClient) error
	appendTo := func(streams ...string) call {
		return func(ctx context.Context, c callClient) error {
			req := &esv1.AppendRequest{}
			for _, s := range streams {
				req.Appends = append(req.Appends, &esv1.StreamAppend{Stream: s, Events: []*esv1.Event{ev("X")}})
			}
			_, err := c.Append(ctx, connect.NewRequest(req))
			return err
		}
	}
	readStream := func(s string) call {
		return func(ctx context.Context, c callClient) error {
			_, err := c.ReadStream(ctx, connect.NewRequest(&esv1.ReadStreamRequest{Stream: s}))
			return err
		}
	}
	info := func(s string) call {
		return func(ctx context.Context, c callClient) error {
			_, err := c.StreamInfo(ctx, connect.NewRequest(&esv1.StreamInfoRequest{Stream: s}))
			return err
		}
	}
	readAll := func(f *esv1.Filter) call {
		return func(ctx context.Context, c callClient) error {
			_, err := c.ReadAll(ctx, connect.NewRequest(&esv1.ReadAllRequest{Filter: f}))
			return err
		}
	}
	subscribe := func(req *esv1.SubscribeRequest) call {
		return func(ctx context.Context, c callClient) error {
			_, err := firstItem(ctx, c, req)
			return err
		}
	}
	head := func(ctx context.Context, c callClient) error {
		_, err := c.Head(ctx, connect.NewRequest(&esv1.HeadRequest{}))
		return err
	}
	watchHead := func(ctx context.Context, c callClient) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s, err := c.WatchHead(ctx, connect.NewRequest(&esv1.WatchHeadRequest{}))
		if err != nil {
			return err
		}
		defer s.Close()
		if !s.Receive() {
			return s.Err()
		}
		return nil
	}
	const (
		ok     = connect.Code(0)
		unauth = connect.CodeUnauthenticated
		denied = connect.CodePermissionDenied
	)
	tests := []struct {
		name  string
		token string
		call  call
		want  connect.Code
	}{
		{"no token: head", "", head, unauth},
		{"no token: append", "", appendTo("order-9"), unauth},
		{"no token: subscribe", "", subscribe(&esv1.SubscribeRequest{}), unauth},
		{"no token: watch head", "", watchHead, unauth},
		{"unknown token", "not-a-known-token-at-all", readStream("order-1"), unauth},
		{"expired token", tokExpired, readStream("order-1"), unauth},
		{"expired token: subscribe", tokExpired, subscribe(&esv1.SubscribeRequest{}), unauth},
		{"admin: append anywhere", tokAdmin, appendTo("invoice-2", "order-2"), ok},
		{"admin: read all", tokAdmin, readAll(nil), ok},
		{"reader: head", tokReader, head, ok},
		{"reader: watch head", tokReader, watchHead, ok},
		{"reader: read stream", tokReader, readStream("invoice-1"), ok},
		{"reader: stream info", tokReader, info("invoice-1"), ok},
		{"reader: read all", tokReader, readAll(nil), ok},
		{"reader: subscribe all", tokReader, subscribe(&esv1.SubscribeRequest{}), ok},
		{"reader: append", tokReader, appendTo("order-3"), denied},
		{"orders: append own", tokOrders, appendTo("order-4"), ok},
		{"orders: multi-append, one foreign", tokOrders, appendTo("order-5", "invoice-5"), denied},
		{"orders: append to readable only", tokOrders, appendTo("cust-2"), denied},
		{"orders: read own stream", tokOrders, readStream("order-1"), ok},
		{"orders: read foreign stream", tokOrders, readStream("invoice-1"), denied},
		{"orders: info foreign stream", tokOrders, info("invoice-1"), denied},
		{"orders: read all", tokOrders, readAll(nil), denied},
		{"orders: read all by type", tokOrders, readAll(&esv1.Filter{EventTypes: []string{"Created"}}), denied},
		{"orders: read all, own prefix", tokOrders, readAll(&esv1.Filter{StreamPrefix: "order-1"}), ok},
		{"orders: read all, own category", tokOrders, readAll(&esv1.Filter{Category: "order"}), ok},
		{"orders: read all, foreign category", tokOrders, readAll(&esv1.Filter{Category: "invoice"}), denied},
		{"orders: subscribe own stream", tokOrders, subscribe(&esv1.SubscribeRequest{Stream: "order-1"}), ok},
		{"orders: subscribe foreign stream", tokOrders, subscribe(&esv1.SubscribeRequest{Stream: "invoice-1"}), denied},
		{"orders: subscribe all", tokOrders, subscribe(&esv1.SubscribeRequest{}), denied},
		{"orders: subscribe category", tokOrders, subscribe(&esv1.SubscribeRequest{Filter: &esv1.Filter{Category: "cust"}}), ok},
		{"hashed: append", tokHashed, appendTo("order-6"), ok},
		{"hashed: write only", tokHashed, readStream("order-6"), denied},
	}
	for _, p := range []struct {
		name string
		h2   bool
		opts []connect.ClientOption
	}{protocols[0], protocols[2]} {
		t.Run(p.name, func(t *testing.T) {
			for _, tc := range tests {
				c := ts.client(p.h2, append(p.opts, bearer(tc.token))...)
				err := tc.call(t.Context(), c)
				if got := connect.CodeOf(err); err == nil && tc.want != ok || err != nil && got != tc.want {
					t.Errorf("%s: err %v, want code %v", tc.name, err, tc.want)
				}
				if err != nil && strings.Contains(err.Error(), tc.token) && tc.token != "" {
					t.Errorf("%s: the error %q echoes the token", tc.name, err)
				}
			}
		})
	}
}

type callClient interface {
	Append(context.Context, *connect.Request[esv1.AppendRequest]) (*connect.Response[esv1.AppendResponse], error)
	ReadStream(context.Context, *connect.Request[esv1.ReadStreamRequest]) (*connect.Response[esv1.ReadStreamResponse], error)
	ReadAll(context.Context, *connect.Request[esv1.ReadAllRequest]) (*connect.Response[esv1.ReadAllResponse], error)
	StreamInfo(context.Context, *connect.Request[esv1.StreamInfoRequest]) (*connect.Response[esv1.StreamInfoResponse], error)
	Head(context.Context, *connect.Request[esv1.HeadRequest]) (*connect.Response[esv1.HeadResponse], error)
	WatchHead(context.Context, *connect.Request[esv1.WatchHeadRequest]) (*connect.ServerStreamForClient[esv1.WatchHeadResponse], error)
	Subscribe(context.Context, *connect.Request[esv1.SubscribeRequest]) (*connect.ServerStreamForClient[esv1.SubscribeResponse], error)
}

// TestAuthCategoryNarrowed: read on "cust-" allows the category cust, but
// not a stream named plain "cust".
func TestAuthCategoryNarrowed(t *testing.T) {
	ts := startWithAuth(t)
	admin := ts.client(true, bearer(tokAdmin))
	for _, s := range []string{"cust", "cust-1", "custom-1", "cust-2"} {
		if _, err := admin.Append(t.Context(), connect.NewRequest(appendReq(s, nil, ev("Created")))); err != nil {
			t.Fatal(err)
		}
	}
	res, err := ts.client(true, bearer(tokOrders)).ReadAll(t.Context(),
		connect.NewRequest(&esv1.ReadAllRequest{Filter: &esv1.Filter{Category: "cust"}}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range res.Msg.GetEvents() {
		got = append(got, e.GetStream())
	}
	if diff := cmp.Diff([]string{"cust-1", "cust-2"}, got); diff != "" {
		t.Errorf("ReadAll category cust with read on cust- (-want +got):\n%s", diff)
	}
}

func TestAuthHTTP(t *testing.T) {
	ts := startWithAuth(t)
	ts.mustAppendAs(t, tokAdmin, "order-1")
	tests := []struct {
		name, path, token string
		want              int
	}{
		{"healthz needs no token", "/healthz", "", http.StatusOK},
		{"readyz needs no token", "/readyz", "", http.StatusOK},
		{"sse: no token", "/v1/subscribe?from=start", "", http.StatusUnauthorized},
		{"sse: expired", "/v1/subscribe?from=start", tokExpired, http.StatusUnauthorized},
		{"sse: invalid", "/v1/subscribe?from=start", "garbage-garbage-garbage", http.StatusUnauthorized},
		{"sse: denied $all", "/v1/subscribe?from=start", tokOrders, http.StatusForbidden},
		{"sse: denied stream", "/v1/subscribe?stream=invoice-1", tokOrders, http.StatusForbidden},
		{"sse: own stream", "/v1/subscribe?stream=order-1&from=start", tokOrders, http.StatusOK},
		{"sse: own category", "/v1/subscribe?category=order&from=start", tokOrders, http.StatusOK},
		{"sse: reader", "/v1/subscribe?from=start", tokReader, http.StatusOK},
		{"json: no token", "", "", http.StatusUnauthorized},
		{"json: denied", "", tokReader, http.StatusForbidden},
	}
	for _, tc := range tests {
		ctx, cancel := context.WithCancel(t.Context())
		var req *http.Request
		if tc.path == "" { // a curl-style Connect JSON append
			req, _ = http.NewRequestWithContext(ctx, "POST", ts.url+"/fjord.eventstore.v1.EventStoreService/Append",
				strings.NewReader(`{"appends":[{"stream":"order-1","events":[{"type":"X"}]}]}`))
			req.Header.Set("Content-Type", "application/json")
		} else {
			req, _ = http.NewRequestWithContext(ctx, "GET", ts.url+tc.path, nil)
		}
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		res, err := ts.h1.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if res.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, res.StatusCode, tc.want)
		}
		if res.StatusCode == http.StatusUnauthorized && tc.path != "" && res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
		if res.StatusCode >= 400 && res.Header.Get("Content-Type") == "text/event-stream" {
			t.Errorf("%s: an error status with an event stream", tc.name)
		}
		cancel()
		res.Body.Close()
	}
}

func (ts *testServer) mustAppendAs(t *testing.T, token, stream string) {
	t.Helper()
	_, err := ts.client(true, bearer(token)).Append(t.Context(), connect.NewRequest(appendReq(stream, nil, ev("Created"))))
	if err != nil {
		t.Fatal(err)
	}
}

func TestParseAuthErrors(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"not JSON", `tokens:`, "invalid auth file"},
		{"unknown field", `{"tokens": [], "extra": 1}`, "unknown field"},
		{"no tokens", `{"tokens": []}`, "no tokens"},
		{"no name", `{"tokens": [{"token": "0123456789abcdef", "rules": [{"allow": "read", "on": "$all"}]}]}`, "missing name"},
		{"short token", `{"tokens": [{"name": "a", "token": "short", "rules": [{"allow": "read", "on": "$all"}]}]}`, "shorter than 16"},
		{"both", `{"tokens": [{"name": "a", "token": "0123456789abcdef", "sha256": "00", "rules": [{"allow": "read", "on": "$all"}]}]}`, "not both"},
		{"bad hash", `{"tokens": [{"name": "a", "sha256": "zz", "rules": [{"allow": "read", "on": "$all"}]}]}`, "64 hex digits"},
		{"no rules", `{"tokens": [{"name": "a", "token": "0123456789abcdef"}]}`, "no rules"},
		{"bad permission", `{"tokens": [{"name": "a", "token": "0123456789abcdef", "rules": [{"allow": "delete", "on": "$all"}]}]}`, `allow "delete"`},
		{"no prefix", `{"tokens": [{"name": "a", "token": "0123456789abcdef", "rules": [{"allow": "read"}]}]}`, `missing "on"`},
		{"bad expiry", `{"tokens": [{"name": "a", "token": "0123456789abcdef", "expires": "tomorrow", "rules": [{"allow": "read", "on": "$all"}]}]}`, "invalid auth file"},
		{"duplicate name", `{"tokens": [{"name": "a", "token": "0123456789abcdef", "rules": [{"allow": "read", "on": "$all"}]},
			{"name": "a", "token": "0123456789abcdefg", "rules": [{"allow": "read", "on": "$all"}]}]}`, "appears twice"},
		{"duplicate token", `{"tokens": [{"name": "a", "token": "0123456789abcdef", "rules": [{"allow": "read", "on": "$all"}]},
			{"name": "b", "token": "0123456789abcdef", "rules": [{"allow": "read", "on": "$all"}]}]}`, "appears twice"},
		{"trailing data", `{"tokens": [{"name": "a", "token": "0123456789abcdef", "rules": [{"allow": "read", "on": "$all"}]}]} {}`, "after the JSON"},
	}
	for _, tc := range tests {
		_, err := server.ParseAuth([]byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := server.ParseAuth([]byte(authFile())); err != nil {
		t.Errorf("the test's auth file: %v", err)
	}
}

func FuzzParseAuth(f *testing.F) {
	f.Add([]byte(authFile()))
	f.Add([]byte(`{"tokens": [{"name": "a", "token": "0123456789abcdef", "rules": [{"allow": "read", "on": "$all"}]}]}`))
	f.Add([]byte(`{"tokens": [{"name": "a", "sha256": "zz", "rules": []}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := server.ParseAuth(b)
		if (a == nil) == (err == nil) {
			t.Fatalf("ParseAuth = %v, %v: want exactly one", a, err)
		}
	})
}
