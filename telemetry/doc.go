// Package telemetry wires OpenTelemetry tracing and Prometheus metrics into
// Fjord. It is the only package that imports OpenTelemetry and the
// Prometheus client; every other package exposes a struct of optional hook
// funcs (or takes an interceptor or a transport) that telemetry fills.
//
// There is no global state: Setup returns one process's tracer provider,
// the W3C propagators (traceparent, tracestate and baggage — set
// explicitly, the most common OpenTelemetry-in-Go mistake being to leave
// them unset), the Prometheus registry, and an in-binary trace viewer that
// keeps recent traces in memory and shows them as waterfalls, so a
// developer can follow one request across services with no collector.
//
//	tel, err := telemetry.Setup(&telemetry.TracingOptions{Service: "orders", TrustRemote: true})
//	if err != nil { … }
//	defer tel.Shutdown(context.Background())
//	client := &http.Client{Transport: tel.Transport(nil)}        // client spans, context propagated
//	mux.Handle("/traces/", http.StripPrefix("/traces", tel.Viewer)) // the waterfall viewer
//	handler := tel.Handler(mux, "orders")                          // server spans
//	tel.InjectMessage(ctx, "orders", msg)                          // producer span, traceparent in the CloudEvent
//	err = tel.ConsumeMessage(ctx, "billing", msg, handle)          // consumer span in the producer's trace
//
// Metrics of `fjord serve`:
//
//	m, err := telemetry.NewServerMetrics(tel.Metrics)
//	srv := server.New(store, &server.Options{Hooks: m.Hooks(), Metrics: tel.Metrics.Handler(), Traces: tel.Viewer})
//	m.WatchSubscribers(srv.SubscriberStats)
package telemetry
