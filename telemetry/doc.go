// Package telemetry turns Fjord's hooks into Prometheus metrics. It is the
// only package that imports the Prometheus client (and, later,
// OpenTelemetry); every other package exposes a struct of optional hook
// funcs that telemetry fills.
//
// There is no global registry: a Registry holds the metrics of one process
// and serves them.
//
//	reg := telemetry.New()
//	m, err := telemetry.NewServerMetrics(reg)
//	if err != nil { … }
//	srv := server.New(store, &server.Options{Hooks: m.Hooks(), Metrics: reg.Handler()})
//	m.WatchSubscribers(srv.SubscriberStats)
package telemetry
