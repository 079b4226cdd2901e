package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
	"github.com/fjord-data/fjord/api/fjord/eventstore/v1/eventstorev1connect"
	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServer is a server over a memstore on 127.0.0.1:0.
type testServer struct {
	url    string
	store  *eventstore.Store
	srv    *server.Server
	stop   context.CancelFunc
	done   chan error
	h1, h2 *http.Client // HTTP/1.1 and h2c clients
}

func start(t *testing.T, opts *server.Options) *testServer {
	t.Helper()
	return startOn(t, newTestStore(), opts)
}

func newTestStore() *eventstore.Store {
	return eventstore.New(memstore.New(), &eventstore.Options{Limits: eventstore.Limits{MaxAppendSize: 4096, MaxEventSize: 2048}})
}

// startOn serves st, and closes it at the end of the test.
func startOn(t *testing.T, st *eventstore.Store, opts *server.Options) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{url: "http://" + ln.Addr().String(), store: st, srv: server.New(st, opts), stop: cancel, done: make(chan error, 1)}
	go func() { ts.done <- ts.srv.Serve(ctx, ln) }()
	var p1, p2 http.Protocols
	p1.SetHTTP1(true)
	p2.SetUnencryptedHTTP2(true)
	ts.h1 = &http.Client{Transport: &http.Transport{Protocols: &p1}}
	ts.h2 = &http.Client{Transport: &http.Transport{Protocols: &p2}}
	t.Cleanup(func() {
		ts.h1.CloseIdleConnections()
		ts.h2.CloseIdleConnections()
		ts.shutdown(t)
		st.Close()
	})
	return ts
}

// shutdown stops Serve (once) and checks it returned cleanly.
func (ts *testServer) shutdown(t *testing.T) {
	t.Helper()
	ts.stop()
	if err, ok := <-ts.done; ok && err != nil {
		t.Errorf("Serve: %v", err)
	}
	select {
	case <-ts.done:
	default:
		close(ts.done)
	}
}

// protocols are the ways clients reach the one handler.
var protocols = []struct {
	name string
	h2   bool
	opts []connect.ClientOption
}{
	{"ConnectJSON/HTTP1", false, []connect.ClientOption{connect.WithProtoJSON()}},
	{"ConnectProto/h2c", true, nil},
	{"GRPC/h2c", true, []connect.ClientOption{connect.WithGRPC()}},
	{"GRPCWeb/HTTP1", false, []connect.ClientOption{connect.WithGRPCWeb()}},
	{"GRPCWebJSON/h2c", true, []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}},
}

func (ts *testServer) client(h2 bool, opts ...connect.ClientOption) eventstorev1connect.EventStoreServiceClient {
	hc := ts.h1
	if h2 {
		hc = ts.h2
	}
	return eventstorev1connect.NewEventStoreServiceClient(hc, ts.url, opts...)
}

func ev(typ string) *esv1.Event { return &esv1.Event{Type: typ, Data: []byte(`{"n":1}`)} }

func appendReq(stream string, exp *esv1.ExpectedVersion, evs ...*esv1.Event) *esv1.AppendRequest {
	return &esv1.AppendRequest{Appends: []*esv1.StreamAppend{{Stream: stream, Expected: exp, Events: evs}}}
}

func exact(v uint64) *esv1.ExpectedVersion {
	return &esv1.ExpectedVersion{Kind: &esv1.ExpectedVersion_Exact{Exact: v}}
}

var noStream = &esv1.ExpectedVersion{Kind: &esv1.ExpectedVersion_NoStream{}}

// details returns an error's details as messages.
func details(t *testing.T, err error) []proto.Message {
	t.Helper()
	var ce *connect.Error
	if !asConnect(err, &ce) {
		return nil
	}
	var out []proto.Message
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			t.Fatalf("detail %s: %v", d.Type(), derr)
		}
		out = append(out, v)
	}
	return out
}

func asConnect(err error, target **connect.Error) bool {
	ce, ok := err.(*connect.Error)
	if ok {
		*target = ce
	}
	return ok
}

// TestErrors sends bad requests over every protocol and checks the code,
// the message and the details.
func TestErrors(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			ts := start(t, nil)
			c := ts.client(p.h2, p.opts...)
			ctx := t.Context()
			if _, err := c.Append(ctx, connect.NewRequest(appendReq("order-1", noStream, ev("OrderPlaced"), ev("ItemAdded")))); err != nil {
				t.Fatalf("Append: %v", err)
			}
			big := ev("Big")
			big.Data = bytes.Repeat([]byte("x"), 3000)
			tests := []struct {
				name    string
				call    func() error
				code    connect.Code
				message string // a phrase the message must contain
				details []proto.Message
			}{
				{"WrongVersion", func() error {
					_, err := c.Append(ctx, connect.NewRequest(appendReq("order-1", exact(1), ev("X"))))
					return err
				}, connect.CodeFailedPrecondition, "at version 2, expected version 1",
					[]proto.Message{&esv1.WrongExpectedVersion{Stream: "order-1", Expected: exact(1), Actual: 2}}},
				{"WrongVersionMulti", func() error {
					req := appendReq("order-2", nil, ev("X"))
					req.Appends = append(req.Appends, &esv1.StreamAppend{Stream: "order-1", Expected: noStream, Events: []*esv1.Event{ev("Y")}})
					_, err := c.Append(ctx, connect.NewRequest(req))
					return err
				}, connect.CodeFailedPrecondition, "expected no stream",
					[]proto.Message{&esv1.WrongExpectedVersion{Stream: "order-1", Index: 1, Expected: noStream, Actual: 2}}},
				{"InvalidStream", func() error {
					_, err := c.Append(ctx, connect.NewRequest(appendReq("$all", nil, ev("X"))))
					return err
				}, connect.CodeInvalidArgument, "reserved",
					[]proto.Message{&esv1.InvalidField{Field: "stream", Reason: `stream names starting with '$' are reserved: "$all"`}}},
				{"EmptyType", func() error {
					_, err := c.Append(ctx, connect.NewRequest(appendReq("order-2", nil, ev(""))))
					return err
				}, connect.CodeInvalidArgument, "events[0].type", []proto.Message{&esv1.InvalidField{Field: "events[0].type", Reason: "the event type is empty"}}},
				{"BadID", func() error {
					e := ev("X")
					e.EventId = &esv1.Event_Id{Id: "not-a-uuid"}
					_, err := c.Append(ctx, connect.NewRequest(appendReq("order-2", nil, e)))
					return err
				}, connect.CodeInvalidArgument, "not a UUID", []proto.Message{&esv1.InvalidField{Field: "events[0].id", Reason: `"not-a-uuid" is not a UUID`}}},
				{"BadIDBytes", func() error {
					e := ev("X")
					e.EventId = &esv1.Event_IdBytes{IdBytes: []byte{1, 2, 3}}
					_, err := c.Append(ctx, connect.NewRequest(appendReq("order-2", nil, e)))
					return err
				}, connect.CodeInvalidArgument, "16 bytes", []proto.Message{&esv1.InvalidField{Field: "events[0].id", Reason: "an ID in bytes is 16 bytes long, not 3"}}},
				{"EventOverStoreLimit", func() error {
					_, err := c.Append(ctx, connect.NewRequest(appendReq("order-2", nil, big)))
					return err
				}, connect.CodeInvalidArgument, "limit of 2048", nil},
				{"RequestOverMaxBytes", func() error {
					e := ev("Huge")
					e.Data = bytes.Repeat([]byte("x"), 10_000)
					_, err := c.Append(ctx, connect.NewRequest(appendReq("order-2", nil, e)))
					return err
				}, connect.CodeResourceExhausted, "", nil},
				{"StreamNotFound", func() error {
					_, err := c.StreamInfo(ctx, connect.NewRequest(&esv1.StreamInfoRequest{Stream: "nope-1"}))
					return err
				}, connect.CodeNotFound, "not found", nil},
				{"ReadInvalidStream", func() error {
					_, err := c.ReadStream(ctx, connect.NewRequest(&esv1.ReadStreamRequest{Stream: "a\nb"}))
					return err
				}, connect.CodeInvalidArgument, "control character", nil},
				{"SubscribeStreamWithFilter", func() error {
					s, err := c.Subscribe(ctx, connect.NewRequest(&esv1.SubscribeRequest{Stream: "order-1", Filter: &esv1.Filter{Category: "order"}}))
					if err != nil {
						return err
					}
					defer s.Close()
					for s.Receive() {
					}
					return s.Err()
				}, connect.CodeInvalidArgument, "takes no filter", nil},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					err := tc.call()
					if got := connect.CodeOf(err); got != tc.code {
						t.Fatalf("code = %v (%v), want %v", got, err, tc.code)
					}
					if !strings.Contains(err.Error(), tc.message) {
						t.Errorf("error %q does not say %q", err, tc.message)
					}
					if tc.details != nil {
						if diff := cmp.Diff(tc.details, details(t, err), protocmp.Transform()); diff != "" {
							t.Errorf("details (-want +got):\n%s", diff)
						}
					}
				})
			}
			// Nothing of the rejected requests was written.
			h, err := c.Head(ctx, connect.NewRequest(&esv1.HeadRequest{}))
			if err != nil || h.Msg.GetPosition() != 2 {
				t.Errorf("Head = %v, %v; want 2", h, err)
			}
		})
	}
}

// TestJSONDecoding posts raw JSON, as curl does, over HTTP/1.1.
func TestJSONDecoding(t *testing.T) {
	ts := start(t, nil)
	tests := []struct {
		name     string
		body     string
		status   int
		code     string // Connect's error code in the body
		contains string
	}{
		{"OK", `{"appends":[{"stream":"order-1","expected":{"noStream":{}},"events":[{"type":"OrderPlaced","data":"eyJ0b3RhbCI6NDJ9"}]}]}`, 200, "", `"position":"1"`},
		{"ExactAsNumber", `{"appends":[{"stream":"order-1","expected":{"exact":1},"events":[{"type":"ItemAdded","id":"0190f2a0-0000-7000-8000-000000000001"}]}]}`, 200, "", `"version":"2"`},
		{"Retry", `{"appends":[{"stream":"order-1","events":[{"type":"ItemAdded","id":"0190f2a0-0000-7000-8000-000000000001"}]}]}`, 200, "", `"duplicate":true`},
		{"ReusedIDElsewhere", `{"appends":[{"stream":"order-9","events":[{"type":"ItemAdded","id":"0190f2a0-0000-7000-8000-000000000001"}]}]}`, 409, "already_exists", "order-1"},
		{"Malformed", `{"appends":[`, 400, "invalid_argument", "unmarshal"},
		{"NotAnObject", `[]`, 400, "invalid_argument", ""},
		{"Empty", ``, 400, "invalid_argument", "empty"},
		{"UnknownField", `{"appends":[{"stream":"order-1","expectedVersion":3,"events":[{"type":"X"}]}]}`, 400, "invalid_argument", "expectedVersion"},
		{"UnknownTopField", `{"stream":"order-1"}`, 400, "invalid_argument", "stream"},
		{"WrongType", `{"appends":[{"stream":42}]}`, 400, "invalid_argument", ""},
		{"BadBase64", `{"appends":[{"stream":"order-1","events":[{"type":"X","data":"{not base64"}]}]}`, 400, "invalid_argument", ""},
		{"TwoExpected", `{"appends":[{"stream":"order-1","expected":{"exact":1,"noStream":{}},"events":[{"type":"X"}]}]}`, 400, "invalid_argument", ""},
		{"WrongVersion", `{"appends":[{"stream":"order-1","expected":{"exact":"5"},"events":[{"type":"X"}]}]}`, 400, "failed_precondition", "expected version 5"},
		{"InvalidStream", `{"appends":[{"stream":"","events":[{"type":"X"}]}]}`, 400, "invalid_argument", "stream name is empty"},
		{"Oversize", `{"appends":[{"stream":"order-1","events":[{"type":"X","data":"` + strings.Repeat("QUFB", 3000) + `"}]}]}`, 429, "resource_exhausted", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ts.h1.Post(ts.url+"/fjord.eventstore.v1.EventStoreService/Append", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Errorf("status = %d, want %d (%s)", res.StatusCode, tc.status, body)
			}
			if tc.code != "" {
				var e struct{ Code, Message string }
				if err := json.Unmarshal(body, &e); err != nil {
					t.Fatalf("error body %q: %v", body, err)
				}
				if e.Code != tc.code {
					t.Errorf("code = %q, want %q (%s)", e.Code, tc.code, body)
				}
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("body %s does not contain %q", body, tc.contains)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	ts := start(t, nil)
	get := func(path string) int {
		res, err := ts.h1.Get(ts.url + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	got := []int{get("/healthz"), get("/readyz")}
	ts.srv.Drain()
	got = append(got, get("/healthz"), get("/readyz"))
	if diff := cmp.Diff([]int{200, 200, 200, 503}, got); diff != "" {
		t.Errorf("statuses of healthz, readyz, then after Drain (-want +got):\n%s", diff)
	}
}
