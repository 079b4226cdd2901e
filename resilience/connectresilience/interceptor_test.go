package connectresilience_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/fjord-data/fjord/resilience"
	"github.com/fjord-data/fjord/resilience/connectresilience"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const procedure = "/fjord.test.v1.Orders/Get"

// server answers with the next of its codes (connect.Code(0): OK) and
// records the Idempotency-Key of each attempt.
type server struct {
	mu    sync.Mutex
	codes []connect.Code
	keys  []string
}

func (s *server) handle(_ context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, req.Header().Get(resilience.IdempotencyKeyHeader))
	code := s.codes[0]
	if len(s.codes) > 1 {
		s.codes = s.codes[1:]
	}
	if code != 0 {
		return nil, connect.NewError(code, errors.New("scripted"))
	}
	return connect.NewResponse(wrapperspb.String("order " + req.Msg.GetValue())), nil
}

func (s *server) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

func TestInterceptor(t *testing.T) {
	tests := []struct {
		name       string
		idempotent bool
		genKeys    bool
		grpc       bool
		codes      []connect.Code
		want       string // the answer or the error's code
		attempts   int
	}{
		{"idempotent call retried", true, false, false, []connect.Code{connect.CodeUnavailable, connect.CodeUnavailable, 0}, "order 42", 3},
		{"over gRPC", true, false, true, []connect.Code{connect.CodeUnavailable, 0}, "order 42", 2},
		{"unsafe call tried once", false, false, false, []connect.Code{connect.CodeUnavailable, 0}, "unavailable", 1},
		{"unsafe call with a generated key", false, true, false, []connect.Code{connect.CodeResourceExhausted, 0}, "order 42", 2},
		{"business answer not retried", true, false, false, []connect.Code{connect.CodeNotFound, 0}, "not_found", 1},
		{"internal error not retried", true, false, false, []connect.Code{connect.CodeInternal, 0}, "internal", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &server{codes: tt.codes}
			mux := http.NewServeMux()
			mux.Handle(procedure, connect.NewUnaryHandler(procedure, s.handle))
			srv := httptest.NewUnstartedServer(mux)
			srv.EnableHTTP2 = true
			srv.StartTLS()
			defer srv.Close()
			breaker := must(resilience.NewBreaker("orders", resilience.BreakerOptions{}))
			ic := must(connectresilience.NewInterceptor(connectresilience.Options{IdempotencyKeys: tt.genKeys},
				resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond}, breaker, resilience.Timeout(5*time.Second)))
			opts := []connect.ClientOption{connect.WithInterceptors(ic)}
			if tt.idempotent {
				opts = append(opts, connect.WithIdempotency(connect.IdempotencyNoSideEffects))
			}
			if tt.grpc {
				opts = append(opts, connect.WithGRPC())
			}
			client := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](srv.Client(), srv.URL+procedure, opts...)
			resp, err := client.CallUnary(context.Background(), connect.NewRequest(wrapperspb.String("42")))
			got := ""
			if err != nil {
				got = connect.CodeOf(err).String()
			} else {
				got = resp.Msg.GetValue()
			}
			if got != tt.want || s.attempts() != tt.attempts {
				t.Errorf("got %q after %d attempts, want %q after %d", got, s.attempts(), tt.want, tt.attempts)
			}
			if tt.genKeys && (len(s.keys[0]) != 32 || s.keys[1] != s.keys[0]) {
				t.Errorf("keys %q: want one generated key on every attempt", s.keys)
			}
			calls, failures, _ := breaker.Counts()
			wantFailures := int64(0)
			for _, c := range tt.codes[:tt.attempts] {
				if c == connect.CodeUnavailable || c == connect.CodeResourceExhausted || c == connect.CodeInternal {
					wantFailures++
				}
			}
			if failures != wantFailures || (tt.want == "not_found" && calls != 0) {
				t.Errorf("breaker counted %d calls, %d failures; want %d failures and business answers neutral", calls, failures, wantFailures)
			}
			srv.Client().CloseIdleConnections()
		})
	}
}

func TestInterceptorOpenBreaker(t *testing.T) {
	s := &server{codes: []connect.Code{connect.CodeUnavailable}}
	mux := http.NewServeMux()
	mux.Handle(procedure, connect.NewUnaryHandler(procedure, s.handle))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()
	reg := must(resilience.NewBreakers(10, resilience.BreakerOptions{WindowCalls: 2, MinCalls: 2}))
	ic := must(connectresilience.NewInterceptor(connectresilience.Options{}, resilience.Retry{MaxAttempts: 5, BaseDelay: time.Millisecond}, reg))
	client := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](srv.Client(), srv.URL+procedure,
		connect.WithInterceptors(ic), connect.WithIdempotency(connect.IdempotencyIdempotent))
	_, err := client.CallUnary(context.Background(), connect.NewRequest(wrapperspb.String("1")))
	var oe *resilience.OpenError
	if !errors.As(err, &oe) || oe.Dependency != "fjord.test.v1.Orders" || s.attempts() != 2 {
		t.Errorf("got %v after %d attempts; want ErrOpen for fjord.test.v1.Orders after 2", err, s.attempts())
	}
	want := `retry(5 attempts, 1ms..10s) → breakers(per dependency, max 10)`
	if diff := cmp.Diff(want, ic.String()); diff != "" {
		t.Errorf("String (-want +got):\n%s", diff)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
