package telemetry

import (
	"context"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/fjord-data/fjord/resilience"
	"github.com/fjord-data/fjord/resilience/httpcache"
)

// ResilienceMetrics are the metrics of resilience pipelines, labelled by
// dependency (bounded by the breaker registry's size):
//
//	fjord_resilience_calls_total{dependency,outcome}       attempts that passed a breaker: success, failure, neutral or deadline
//	fjord_resilience_call_duration_seconds{dependency}     their latency
//	fjord_resilience_rejections_total{dependency,policy}   calls refused: breaker, bulkhead, ratelimit, adaptive, budget
//	fjord_resilience_retries_total{dependency}             retries decided
//	fjord_resilience_giveups_total{dependency}             retry policies that stopped with an error
//	fjord_resilience_timeouts_total{dependency,scope}      total and per-attempt timeouts
//	fjord_resilience_hedges_total{dependency}              hedged attempts started
//	fjord_resilience_fallbacks_total{dependency}           failures replaced by the fallback
//	fjord_resilience_breaker_state{dependency}             0 closed, 1 open, 2 half-open
//	fjord_resilience_concurrency_limit{dependency}         the adaptive limiter's limit
type ResilienceMetrics struct {
	calls, rejections, timeouts         *prometheus.CounterVec
	retries, giveUps, hedges, fallbacks *prometheus.CounterVec
	duration                            *prometheus.HistogramVec
	state, limit                        *prometheus.GaugeVec
}

// NewResilienceMetrics registers the resilience metrics in reg. It fails if
// they are registered already.
func NewResilienceMetrics(reg *Registry) (*ResilienceMetrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fjord_resilience_" + name, Help: help}, labels)
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fjord_resilience_" + name, Help: help}, []string{"dependency"})
	}
	m := &ResilienceMetrics{
		calls:      counter("calls_total", "Attempts that passed a circuit breaker, by outcome (success, failure, neutral, deadline: the caller's deadline ended it).", "dependency", "outcome"),
		rejections: counter("rejections_total", "Calls refused by a policy.", "dependency", "policy"),
		timeouts:   counter("timeouts_total", "Total and per-attempt timeouts that expired.", "dependency", "scope"),
		retries:    counter("retries_total", "Retries decided by the retry policy.", "dependency"),
		giveUps:    counter("giveups_total", "Retry policies that stopped with an error.", "dependency"),
		hedges:     counter("hedges_total", "Hedged attempts started.", "dependency"),
		fallbacks:  counter("fallbacks_total", "Failures replaced by the fallback.", "dependency"),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fjord_resilience_call_duration_seconds",
			Help: "Latency of attempts that passed a circuit breaker.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
			[]string{"dependency"}), // 0.5 ms … 16 s
		state: gauge("breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open."),
		limit: gauge("concurrency_limit", "The adaptive concurrency limiter's current limit."),
	}
	for _, c := range []prometheus.Collector{m.calls, m.rejections, m.timeouts, m.retries, m.giveUps, m.hedges,
		m.fallbacks, m.duration, m.state, m.limit} {
		if err := reg.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ResilienceHooks returns hooks for resilience pipelines, breakers and
// limiters that record every decision of a call as an event of the call's
// span ("resilience.retry", "resilience.reject", "resilience.timeout",
// "resilience.hedge", "resilience.fallback", "resilience.wait",
// "resilience.giveup"), so the trace viewer shows them in the waterfall,
// and count them in m when m is not nil.
func ResilienceHooks(m *ResilienceMetrics) resilience.Hooks {
	return resilience.Hooks{
		OnOutcome: func(_ context.Context, e resilience.OutcomeEvent) {
			if m != nil {
				m.calls.WithLabelValues(e.Dependency, e.Outcome).Inc()
				m.duration.WithLabelValues(e.Dependency).Observe(e.Latency.Seconds())
			}
		},
		OnReject: func(ctx context.Context, e resilience.Rejection) {
			event(ctx, "resilience.reject", e.Err, "dependency", e.Dependency, "policy", e.Policy)
			if m != nil {
				m.rejections.WithLabelValues(e.Dependency, e.Policy).Inc()
			}
		},
		OnWait: func(ctx context.Context, e resilience.WaitEvent) {
			event(ctx, "resilience.wait", nil, "dependency", e.Dependency, "policy", e.Policy, "waited", e.Waited.String())
		},
		OnRetry: func(ctx context.Context, e resilience.RetryEvent) {
			event(ctx, "resilience.retry", e.Err, "dependency", e.Dependency, "attempt", strconv.Itoa(e.Attempt), "delay", e.Delay.String())
			if m != nil {
				m.retries.WithLabelValues(e.Dependency).Inc()
			}
		},
		OnGiveUp: func(ctx context.Context, e resilience.RetryEvent) {
			event(ctx, "resilience.giveup", e.Err, "dependency", e.Dependency, "attempt", strconv.Itoa(e.Attempt), "reason", e.Reason)
			if m != nil {
				m.giveUps.WithLabelValues(e.Dependency).Inc()
			}
		},
		OnTimeout: func(ctx context.Context, e resilience.TimeoutError) {
			event(ctx, "resilience.timeout", nil, "dependency", e.Dependency, "scope", e.Scope, "timeout", e.Timeout.String())
			if m != nil {
				m.timeouts.WithLabelValues(e.Dependency, e.Scope).Inc()
			}
		},
		OnHedge: func(ctx context.Context, e resilience.HedgeEvent) {
			event(ctx, "resilience.hedge", nil, "dependency", e.Dependency, "attempt", strconv.Itoa(e.Attempt))
			if m != nil {
				m.hedges.WithLabelValues(e.Dependency).Inc()
			}
		},
		OnFallback: func(ctx context.Context, e resilience.FallbackEvent) {
			event(ctx, "resilience.fallback", e.Err, "dependency", e.Dependency)
			if m != nil {
				m.fallbacks.WithLabelValues(e.Dependency).Inc()
			}
		},
		OnStateChange: func(e resilience.StateChange) {
			if m != nil {
				m.state.WithLabelValues(e.Dependency).Set(float64(e.To))
			}
		},
		OnLimitChange: func(e resilience.LimitChange) {
			if m != nil {
				m.limit.WithLabelValues(e.Dependency).Set(float64(e.To))
			}
		},
	}
}

func event(ctx context.Context, name string, err error, kv ...string) {
	if err != nil {
		kv = append(kv, "error", err.Error())
	}
	AddEvent(ctx, name, kv...)
}

// cacheStatus records the HTTP cache's verdict (the X-Fjord-Cache response
// header: hit, miss, stale, revalidated…) on the client span of the call.
type cacheStatus struct{ next http.RoundTripper }

func (c cacheStatus) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if resp != nil {
		if s := resp.Header.Get(httpcache.DefaultStatusHeader); s != "" {
			trace.SpanFromContext(req.Context()).SetAttributes(attribute.String("fjord.cache", s))
		}
	}
	return resp, err
}
