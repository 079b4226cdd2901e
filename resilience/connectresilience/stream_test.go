package connectresilience_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/fjord-data/fjord/resilience"
	"github.com/fjord-data/fjord/resilience/connectresilience"
)

const streamProcedure = "/fjord.test.v1.Orders/Watch"

func TestStreamsPassTheBreaker(t *testing.T) {
	var code connect.Code
	mux := http.NewServeMux()
	mux.Handle(streamProcedure, connect.NewServerStreamHandler(streamProcedure,
		func(_ context.Context, req *connect.Request[wrapperspb.StringValue], out *connect.ServerStream[wrapperspb.StringValue]) error {
			if code != 0 {
				return connect.NewError(code, errors.New("scripted"))
			}
			return out.Send(wrapperspb.String("event " + req.Msg.GetValue()))
		}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()
	reg := must(resilience.NewBreakers(10, resilience.BreakerOptions{WindowCalls: 4, MinCalls: 4}))
	ic := must(connectresilience.NewInterceptor(connectresilience.Options{}, reg))
	client := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](srv.Client(), srv.URL+streamProcedure, connect.WithInterceptors(ic))
	watch := func() (got []string, err error) {
		s, err := client.CallServerStream(context.Background(), connect.NewRequest(wrapperspb.String("1")))
		if err != nil {
			return nil, err
		}
		defer s.Close()
		for s.Receive() {
			got = append(got, s.Msg().GetValue())
		}
		return got, s.Err()
	}
	if got, err := watch(); err != nil || len(got) != 1 {
		t.Fatalf("healthy stream: %q, %v", got, err)
	}
	code = connect.CodeNotFound
	watch()
	code = connect.CodeUnavailable
	for range 2 {
		watch()
	}
	b := reg.Get("fjord.test.v1.Orders")
	if calls, failures, _ := b.Counts(); calls != 3 || failures != 2 || b.State() != resilience.StateClosed {
		t.Errorf("breaker %d calls %d failures, %v; want 3, 2 (the business answer is neutral), closed", calls, failures, b.State())
	}
	watch() // 3 failures of 4
	_, err := watch()
	if !errors.Is(err, resilience.ErrOpen) {
		t.Errorf("stream on an open breaker: %v, want ErrOpen", err)
	}
}
