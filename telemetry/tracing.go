package telemetry

import (
	"context"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingOptions configure Setup. The zero value works: every trace is
// sampled, kept in a viewer of DefaultViewerTraces traces, and exported
// nowhere else.
type TracingOptions struct {
	// Service names this process in spans ("orders", "fjord").
	Service string
	// Sampler decides which traces are recorded; nil samples every trace
	// whose parent is sampled or that starts here
	// (ParentBased(AlwaysSample)).
	Sampler sdktrace.Sampler
	// Exporters receive every ended span in batches (an OTLP exporter for a
	// collector, for example). The in-binary viewer needs none.
	Exporters []sdktrace.SpanExporter
	// Viewer bounds the in-memory span store behind the trace viewer.
	Viewer ViewerOptions
	// TrustRemote makes server spans children of the caller's span (one
	// trace across services) instead of new traces linked to it. Set it for
	// calls between your own services; leave it off at an edge that takes
	// traffic from outside.
	TrustRemote bool
}

// Telemetry is one process's tracing and metrics, wired together: a tracer
// provider, the W3C propagators (traceparent and baggage — set explicitly,
// never left to a global default), the Prometheus registry, and the trace
// viewer. It installs nothing globally. It is safe for concurrent use.
type Telemetry struct {
	// Metrics is the process's Prometheus registry.
	Metrics *Registry
	// Viewer keeps recent traces in memory and serves them as waterfalls.
	Viewer *Viewer

	provider    *sdktrace.TracerProvider
	propagator  propagation.TextMapPropagator
	tracer      trace.Tracer
	trustRemote bool
}

// Setup wires tracing and metrics in one call. Call Shutdown when the
// process stops, so that exporters flush.
func Setup(opts *TracingOptions) (*Telemetry, error) {
	if opts == nil {
		opts = &TracingOptions{}
	}
	viewer, err := NewViewer(&opts.Viewer)
	if err != nil {
		return nil, err
	}
	service := opts.Service
	if service == "" {
		service = "fjord"
	}
	res, err := sdkresource.Merge(sdkresource.Default(), sdkresource.NewSchemaless(attribute.String("service.name", service)))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	sampler := opts.Sampler
	if sampler == nil {
		sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res), sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(viewer),
	}
	for _, e := range opts.Exporters {
		tpOpts = append(tpOpts, sdktrace.WithBatcher(e))
	}
	provider := sdktrace.NewTracerProvider(tpOpts...)
	return &Telemetry{
		Metrics:     New(),
		Viewer:      viewer,
		provider:    provider,
		propagator:  propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		tracer:      provider.Tracer("github.com/fjord-data/fjord/telemetry"),
		trustRemote: opts.TrustRemote,
	}, nil
}

// Shutdown flushes exporters and stops the tracer provider. Spans started
// after Shutdown are dropped.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: shutdown: %w", err)
	}
	return nil
}

// TracerProvider is the provider behind every span Telemetry starts, for
// libraries that take one.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.provider }

// Propagator carries trace context and baggage: W3C traceparent,
// tracestate and baggage.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.propagator }

// Tracer returns a named tracer of this process.
func (t *Telemetry) Tracer(name string) trace.Tracer { return t.provider.Tracer(name) }

// Transport wraps an HTTP client transport (nil: http.DefaultTransport):
// every request gets a client span, and its trace context travels in the
// request's headers. Put it outermost, around the resilience policies and
// the cache, so retries and cache hits appear inside the call's span: the
// span gets the cache's verdict (attribute fjord.cache) and, with
// ResilienceHooks on the pipeline, an event for each retry, rejection,
// timeout, hedge and fallback.
func (t *Telemetry) Transport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return otelhttp.NewTransport(cacheStatus{rt}, otelhttp.WithTracerProvider(t.provider), otelhttp.WithPropagators(t.propagator))
}

// Handler wraps an HTTP server handler: every request gets a server span,
// named from the matched route pattern when the handler is a ServeMux, and
// joined to the caller's trace when TrustRemote is set (otherwise linked to
// it).
func (t *Telemetry) Handler(h http.Handler, operation string) http.Handler {
	opts := []otelhttp.Option{otelhttp.WithTracerProvider(t.provider), otelhttp.WithPropagators(t.propagator)}
	if !t.trustRemote {
		opts = append(opts, otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }))
	}
	return otelhttp.NewHandler(h, operation, opts...)
}

// ConnectInterceptor traces Connect, gRPC and gRPC-Web calls, as clients
// and as handlers, with the same provider and propagators.
func (t *Telemetry) ConnectInterceptor() (connect.Interceptor, error) {
	opts := []otelconnect.Option{
		otelconnect.WithTracerProvider(t.provider), otelconnect.WithPropagator(t.propagator), otelconnect.WithoutMetrics(),
	}
	if t.trustRemote {
		opts = append(opts, otelconnect.WithTrustRemote())
	}
	i, err := otelconnect.NewInterceptor(opts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: connect interceptor: %w", err)
	}
	return i, nil
}

// AddEvent records a named event with string attributes on the span in ctx
// (a retry, a breaker decision, a cache status), if that span is recording.
// Policies and caches call it through their hooks so the viewer shows them.
func AddEvent(ctx context.Context, name string, kv ...string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
	}
	span.AddEvent(name, trace.WithAttributes(attrs...))
}
