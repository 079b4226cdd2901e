package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/mempubsub"
	"github.com/fjord-data/fjord/telemetry"
)

func setup(t *testing.T, opts *telemetry.TracingOptions) *telemetry.Telemetry {
	t.Helper()
	tel, err := telemetry.Setup(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return tel
}

// TestTraceAcrossHTTPAndMessage follows one request: a client calls the
// orders service over HTTP; orders publishes a message; a consumer handles
// it and calls back to the orders service over HTTP. All of it must be one
// trace with no orphan spans.
func TestTraceAcrossHTTPAndMessage(t *testing.T) {
	tel := setup(t, &telemetry.TracingOptions{Service: "shop", TrustRemote: true})
	client := &http.Client{Transport: tel.Transport(nil)}
	broker := mempubsub.New(nil)
	broker.CreateSubscription("orders", "billing")
	topic := pubsub.NewTopic(broker.Topic("orders"), &pubsub.TopicOptions{Inject: tel.MessageInjector("orders")})
	defer topic.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		msg := &pubsub.Message{ID: "1", Source: "/shop/orders", Type: "shop.order.placed", Data: []byte(`{}`)}
		if err := topic.Publish(r.Context(), msg); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /orders/{id}/ack", func(w http.ResponseWriter, r *http.Request) {
		telemetry.AddEvent(r.Context(), "acknowledged", "order", r.PathValue("id"))
	})
	srv := httptest.NewServer(tel.Handler(mux, "orders"))
	defer srv.Close()

	consumed := make(chan error, 1)
	router := pubsub.NewRouter(broker.Subscription("orders", "billing"), &pubsub.RouterOptions{Consumer: "billing", Topic: "orders"})
	router.Handle("shop.order.placed", tel.TraceHandler("billing", func(ctx context.Context, m *pubsub.Message) error {
		err := post(ctx, client, srv.URL+"/orders/1/ack")
		consumed <- err
		return err
	}))
	runCtx, stop := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- router.Run(runCtx) }()
	defer stop()

	ctx, root := tel.Tracer("test").Start(context.Background(), "checkout")
	if err := post(ctx, client, srv.URL+"/orders"); err != nil {
		t.Fatal(err)
	}
	if err := <-consumed; err != nil {
		t.Fatal(err)
	}
	root.End()
	stop() // Run returns after the handler, so after its span ended
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Errorf("router.Run = %v", err)
	}
	srv.Close() // every server span has ended once Close returns

	traces := tel.Viewer.Traces()
	if len(traces) != 1 {
		t.Fatalf("got %d traces, want 1: %+v", len(traces), traces)
	}
	got := traces[0]
	if got.Orphans != 0 || got.Errors != 0 || got.Root != "checkout" {
		t.Errorf("trace summary = %+v, want root checkout, no orphans, no errors", got)
	}
	spans, ok := tel.Viewer.Trace(got.TraceID)
	if !ok {
		t.Fatal("trace not kept")
	}
	var shape []string
	depth := map[string]int{}
	for _, s := range spans {
		depth[s.SpanID] = depth[s.ParentID] + 1
		shape = append(shape, strings.Repeat(" ", depth[s.SpanID]-1)+s.Kind+" "+s.Name)
	}
	want := []string{
		"internal checkout",
		" client HTTP POST",
		"  server POST /orders",
		"   producer create orders",
		"    consumer process billing",
		"     client HTTP POST",
		"      server POST /orders/{id}/ack",
	}
	if diff := cmp.Diff(want, shape); diff != "" {
		t.Errorf("waterfall (-want +got):\n%s", diff)
	}
	last := spans[len(spans)-1]
	if len(last.Events) != 1 || last.Events[0].Name != "acknowledged" || last.Events[0].Attributes["order"] != "1" {
		t.Errorf("ack span events = %+v, want one 'acknowledged' with order=1", last.Events)
	}
}

func post(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode >= 300 {
		return errors.New(resp.Status)
	}
	return nil
}

// TestUntrustedEdgeStartsNewTrace: without TrustRemote a server span starts
// its own trace and links to the caller's.
func TestUntrustedEdgeStartsNewTrace(t *testing.T) {
	tel := setup(t, nil)
	srv := httptest.NewServer(tel.Handler(http.NotFoundHandler(), "edge"))
	ctx, root := tel.Tracer("test").Start(context.Background(), "caller")
	_ = post(ctx, &http.Client{Transport: tel.Transport(nil)}, srv.URL)
	root.End()
	srv.Close()
	traces := tel.Viewer.Traces()
	if len(traces) != 2 {
		t.Fatalf("got %d traces, want 2 (caller, and the edge's own)", len(traces))
	}
	for _, tr := range traces {
		if tr.Orphans != 0 {
			t.Errorf("trace %s has %d orphans", tr.Root, tr.Orphans)
		}
	}
}

// TestConsumeWithoutContextAndFailure: a message with no trace context
// starts a new trace, and a failing handler marks its span.
func TestConsumeWithoutContextAndFailure(t *testing.T) {
	tel := setup(t, nil)
	boom := errors.New("boom")
	msg := &pubsub.Message{ID: "7", Source: "/x", Type: "t"}
	err := tel.ConsumeMessage(context.Background(), "c", msg, func(ctx context.Context) error {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			t.Error("handler context has no span")
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("ConsumeMessage = %v, want the handler's error", err)
	}
	traces := tel.Viewer.Traces()
	if len(traces) != 1 || traces[0].Errors != 1 || traces[0].Root != "process c" {
		t.Errorf("traces = %+v, want one root 'process c' with 1 error", traces)
	}
	if msg.Extensions["traceparent"] != "" {
		t.Error("consuming wrote a traceparent into the message")
	}
}

// TestConnectInterceptor: a Connect call carries the trace to the handler.
func TestConnectInterceptor(t *testing.T) {
	tel := setup(t, &telemetry.TracingOptions{TrustRemote: true})
	icpt, err := tel.ConnectInterceptor()
	if err != nil {
		t.Fatal(err)
	}
	var handlerTrace trace.TraceID
	mux := http.NewServeMux()
	mux.Handle("/test.v1.Ping/Ping", connect.NewUnaryHandler("/test.v1.Ping/Ping",
		func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[emptypb.Empty], error) {
			handlerTrace = trace.SpanContextFromContext(ctx).TraceID()
			return connect.NewResponse(&emptypb.Empty{}), nil
		}, connect.WithInterceptors(icpt)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := connect.NewClient[emptypb.Empty, emptypb.Empty](srv.Client(), srv.URL+"/test.v1.Ping/Ping", connect.WithInterceptors(icpt))
	ctx, root := tel.Tracer("test").Start(context.Background(), "caller")
	if _, err := client.CallUnary(ctx, connect.NewRequest(&emptypb.Empty{})); err != nil {
		t.Fatal(err)
	}
	root.End()
	if want := root.SpanContext().TraceID(); handlerTrace != want {
		t.Errorf("handler ran in trace %s, want the caller's %s", handlerTrace, want)
	}
}
