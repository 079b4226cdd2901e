package server_test

import (
	"slices"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
	"github.com/fjord-data/fjord/server"
)

// itemOutcome is one AppendBatch outcome with its error details decoded.
type itemOutcome struct {
	OK      *esv1.AppendResponse
	Code    connect.Code
	Details []proto.Message
}

// TestAppendBatch checks that each item of a batch gets its own outcome,
// as the unary Append would: a success, a wrong expected version with its
// detail, bad input, a stream the token may not write; and that OnAppend
// runs once per item.
func TestAppendBatch(t *testing.T) {
	auth, err := server.ParseAuth([]byte(authFile()))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var codes []string
	ts := start(t, &server.Options{Auth: auth, Hooks: server.Hooks{OnAppend: func(i server.AppendInfo) {
		mu.Lock()
		codes = append(codes, i.Code)
		mu.Unlock()
	}}})
	c := ts.client(true, bearer(tokOrders))
	if _, err := c.Append(t.Context(), connect.NewRequest(appendReq("order-2", nil, ev("Created")))); err != nil {
		t.Fatal(err)
	}
	req := &esv1.AppendBatchRequest{Appends: []*esv1.AppendRequest{
		appendReq("order-1", noStream, ev("Created")),
		{Appends: []*esv1.StreamAppend{
			{Stream: "order-3", Events: []*esv1.Event{ev("Created")}},
			{Stream: "order-2", Expected: exact(5), Events: []*esv1.Event{ev("Paid")}},
		}},
		appendReq("order-4", nil, ev("")),
		appendReq("cust-1", nil, ev("Created")),
	}}
	res, err := c.AppendBatch(t.Context(), connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	var got []itemOutcome
	for _, o := range res.Msg.GetOutcomes() {
		out := itemOutcome{OK: o.GetOk()}
		if e := o.GetError(); e != nil {
			out.Code = connect.Code(e.GetCode())
			for _, d := range e.GetDetails() {
				m, err := d.UnmarshalNew()
				if err != nil {
					t.Fatal(err)
				}
				out.Details = append(out.Details, m)
			}
		}
		got = append(got, out)
	}
	want := []itemOutcome{
		{OK: &esv1.AppendResponse{Results: []*esv1.StreamResult{{Version: 1, Position: 2}}}},
		{Code: connect.CodeFailedPrecondition, Details: []proto.Message{&esv1.WrongExpectedVersion{Stream: "order-2", Index: 1, Expected: exact(5), Actual: 1}}},
		{Code: connect.CodeInvalidArgument, Details: []proto.Message{&esv1.InvalidField{Field: "events[0].type"}}},
		{Code: connect.CodePermissionDenied},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform(), protocmp.IgnoreFields(&esv1.InvalidField{}, "reason")); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	mu.Lock()
	slices.Sort(codes)
	gotCodes := codes
	mu.Unlock()
	wantCodes := []string{"failed_precondition", "invalid_argument", "ok", "ok", "permission_denied"}
	if diff := cmp.Diff(wantCodes, gotCodes); diff != "" {
		t.Errorf("OnAppend codes (-want +got):\n%s", diff)
	}
}

// TestAppendBatchLimits: a batch over MaxBatchAppends or MaxRequestBytes
// is refused as a whole, and a batch without a token too.
func TestAppendBatchLimits(t *testing.T) {
	ts := start(t, &server.Options{MaxBatchAppends: 2})
	c := ts.client(true)
	three := &esv1.AppendBatchRequest{}
	for range 3 {
		three.Appends = append(three.Appends, appendReq("s", nil, ev("E")))
	}
	if _, err := c.AppendBatch(t.Context(), connect.NewRequest(three)); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("3 appends with MaxBatchAppends 2: %v, want InvalidArgument", err)
	}
	big := &esv1.AppendBatchRequest{}
	for range 2 {
		big.Appends = append(big.Appends, appendReq("s", nil, &esv1.Event{Type: "E", Data: make([]byte, 5000)}))
	}
	if _, err := c.AppendBatch(t.Context(), connect.NewRequest(big)); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("a batch over MaxRequestBytes: %v, want ResourceExhausted", err)
	}
	ta := startWithAuth(t)
	if _, err := ta.client(true).AppendBatch(t.Context(), connect.NewRequest(three)); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("no token: %v, want Unauthenticated", err)
	}
}
