package resilience

import (
	"context"
	"time"
)

// Hooks are optional callbacks for every state change and decision the
// policies make, for metrics, logs, traces and the console. A nil field is
// skipped at no cost. Hooks run synchronously on the caller's goroutine (or
// on the goroutine that caused the change) and must be fast and must not
// call back into the pipeline. The same Hooks type is accepted by Options,
// BreakerOptions and AdaptiveOptions; each uses the fields that concern it.
//
// The hooks of one call's decisions (outcome, reject, wait, retry, give-up,
// timeout, hedge, fallback) get that call's context, so that a tracer can
// record them as events of the call's span (see telemetry); state and limit
// changes belong to no single call.
type Hooks struct {
	// OnStateChange: a circuit breaker moved between closed, open and
	// half-open.
	OnStateChange func(StateChange)
	// OnOutcome: an attempt admitted by a breaker ended, classified as the
	// breaker counted it (with its latency), for call metrics.
	OnOutcome func(context.Context, OutcomeEvent)
	// OnReject: a policy refused a call (open breaker, full bulkhead, rate
	// limit, concurrency limit, exhausted budget).
	OnReject func(context.Context, Rejection)
	// OnWait: a call was admitted by a bulkhead or rate limiter after
	// waiting for a slot or its turn.
	OnWait func(context.Context, WaitEvent)
	// OnRetry: the retry policy decided to retry after Delay.
	OnRetry func(context.Context, RetryEvent)
	// OnGiveUp: the retry policy stopped with an error (attempts used up,
	// error not retryable, Retry-After too long, deadline too close).
	OnGiveUp func(context.Context, RetryEvent)
	// OnTimeout: a total or per-attempt timeout expired.
	OnTimeout func(context.Context, TimeoutError)
	// OnHedge: the hedge policy started another concurrent attempt.
	OnHedge func(context.Context, HedgeEvent)
	// OnFallback: the fallback replaced a failure.
	OnFallback func(context.Context, FallbackEvent)
	// OnLimitChange: the adaptive limiter changed its concurrency limit.
	OnLimitChange func(LimitChange)
}

// StateChange describes a circuit breaker transition.
type StateChange struct {
	Dependency string
	From, To   State
	// Window statistics that caused the change (closed → open), or the
	// probes' results (half-open → closed or open).
	Calls, Failures, Slow int64
}

// OutcomeEvent describes how an attempt that passed a breaker ended.
type OutcomeEvent struct {
	Dependency string
	Outcome    string // "success", "failure", "neutral", or "deadline" (the caller's deadline ended it; see BreakerOptions.SlowCall)
	Latency    time.Duration
	Err        error
}

// Rejection describes a call a policy refused.
type Rejection struct {
	Dependency string
	Policy     string // "breaker", "bulkhead", "ratelimit", "adaptive", "budget"
	Err        error
}

// WaitEvent describes a call admitted after a wait.
type WaitEvent struct {
	Dependency string
	Policy     string // "bulkhead" or "ratelimit"
	Waited     time.Duration
}

// RetryEvent describes a retry decision.
type RetryEvent struct {
	Dependency string
	Attempt    int           // the attempt that failed, from 1
	Delay      time.Duration // wait before the next attempt (OnRetry)
	Reason     string        // why the retry policy gave up (OnGiveUp)
	Err        error
}

// HedgeEvent describes a hedged attempt being started.
type HedgeEvent struct {
	Dependency string
	Attempt    int // 2 for the first hedge
}

// FallbackEvent describes a failure replaced by the fallback.
type FallbackEvent struct {
	Dependency string
	Err        error
}

// LimitChange describes an adaptive limit change.
type LimitChange struct {
	Dependency string
	From, To   int
	Latency    time.Duration // the sample that caused it
	Baseline   time.Duration // the minimum latency the limiter compares with
}

type dependencyKey struct{}

// WithDependency returns a context naming the dependency a call goes to. A
// Breakers registry used as a policy picks the breaker by this name (and
// falls back to the pipeline's name); the Transport sets it to the request's
// host.
func WithDependency(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, dependencyKey{}, name)
}

// DependencyFrom returns the name set by WithDependency, or "".
func DependencyFrom(ctx context.Context) string {
	s, _ := ctx.Value(dependencyKey{}).(string)
	return s
}

type noHedgeKey struct{}

// WithoutHedging returns a context under which Hedge policies send a
// single attempt: for calls that must not be sent twice at once (a
// non-idempotent request). Transport and the Connect interceptor set it
// for requests they would not retry.
func WithoutHedging(ctx context.Context) context.Context {
	return context.WithValue(ctx, noHedgeKey{}, true)
}

func hedgingAllowed(ctx context.Context) bool { return ctx.Value(noHedgeKey{}) == nil }
