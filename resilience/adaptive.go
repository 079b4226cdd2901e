package resilience

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// AdaptiveOptions configure an AdaptiveLimiter. The zero value starts at
// 20 concurrent calls, between 1 and 1,000.
type AdaptiveOptions struct {
	InitialLimit, MinLimit, MaxLimit int // defaults 20, 1, 1000
	// Tolerance is the latency, as a multiple of the baseline (the lowest
	// recent latency), from which a call signals congestion (default 2; > 1).
	Tolerance float64
	// Backoff multiplies the limit on congestion (default 0.9; in (0, 1)).
	Backoff float64
	// BaselineSamples is the length of a baseline period in samples: the
	// baseline is the minimum latency over the last two periods, so that
	// it follows a dependency that became slower for good (default 100).
	BaselineSamples int
	// Hooks.OnLimitChange is called whenever the limit changes.
	Hooks Hooks
}

// AdaptiveLimiter is a latency-based concurrency limit (additive increase,
// multiplicative decrease): a call whose latency stays within Tolerance ×
// baseline raises the limit by one when the limiter was at least half used;
// a slower call, or one that timed out, lowers it by the Backoff factor.
// Calls over the limit are rejected at once with ErrConcurrencyLimited.
// Errors other than timeouts and neutral outcomes leave the limit alone
// (the breaker judges errors). It is safe for concurrent use.
type AdaptiveLimiter struct {
	name     string
	o        AdaptiveOptions
	clk      clock
	limit    atomic.Int64
	inflight atomic.Int64
	mu       struct {
		sync.Mutex
		limit           float64
		curMin, prevMin int64
		n               int
	}
}

// NewAdaptiveLimiter returns a limiter or a *ConfigError.
func NewAdaptiveLimiter(dependency string, o AdaptiveOptions) (*AdaptiveLimiter, error) {
	p := fmt.Sprintf("adaptive limiter %q", dependency)
	switch {
	case o.InitialLimit < 0 || o.MinLimit < 0 || o.MaxLimit < 0 || o.BaselineSamples < 0:
		return nil, configErr(p, "a limit or BaselineSamples is negative", "use 0 for the defaults or positive values")
	case o.Tolerance != 0 && !(o.Tolerance > 1):
		return nil, configErr(p, fmt.Sprintf("Tolerance %v is not above 1", o.Tolerance), "use e.g. 2 (twice the baseline latency means congestion)")
	case o.Backoff != 0 && !(o.Backoff > 0 && o.Backoff < 1):
		return nil, configErr(p, fmt.Sprintf("Backoff %v is outside (0, 1)", o.Backoff), "use e.g. 0.9")
	}
	o.InitialLimit = cmpOr(o.InitialLimit, 20)
	o.MinLimit = cmpOr(o.MinLimit, 1)
	o.MaxLimit = cmpOr(o.MaxLimit, 1000)
	o.Tolerance = cmpOr(o.Tolerance, 2)
	o.Backoff = cmpOr(o.Backoff, 0.9)
	o.BaselineSamples = cmpOr(o.BaselineSamples, 100)
	if o.MinLimit > o.MaxLimit || o.InitialLimit < o.MinLimit || o.InitialLimit > o.MaxLimit {
		return nil, configErr(p, fmt.Sprintf("limits are not ordered: min %d, initial %d, max %d", o.MinLimit, o.InitialLimit, o.MaxLimit),
			"make MinLimit ≤ InitialLimit ≤ MaxLimit")
	}
	a := &AdaptiveLimiter{name: dependency, o: o, clk: newClock()}
	a.limit.Store(int64(o.InitialLimit))
	a.mu.limit = float64(o.InitialLimit)
	a.mu.curMin, a.mu.prevMin = math.MaxInt64, math.MaxInt64
	return a, nil
}

func cmpOr[T int | float64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// String describes the limiter as Pipeline.String prints it.
func (a *AdaptiveLimiter) String() string {
	return fmt.Sprintf("adaptive(%q %d..%d)", a.name, a.o.MinLimit, a.o.MaxLimit)
}

// Limit returns the current concurrency limit.
func (a *AdaptiveLimiter) Limit() int { return int(a.limit.Load()) }

// InFlight returns the calls running.
func (a *AdaptiveLimiter) InFlight() int { return int(a.inflight.Load()) }

// acquire admits a call and returns the calls in flight including it.
func (a *AdaptiveLimiter) acquire() (int64, error) {
	n := a.inflight.Add(1)
	if lim := a.limit.Load(); n > lim {
		a.inflight.Add(-1)
		return 0, &RejectedError{Dependency: a.name, Policy: "adaptive", Limit: int(lim), Reason: ErrConcurrencyLimited}
	}
	return n, nil
}

// release ends a call admitted with inflight calls running, that took rtt;
// congested reports a timeout, sample whether the latency means anything.
func (a *AdaptiveLimiter) release(inflight int64, rtt time.Duration, sample, congested bool) {
	a.inflight.Add(-1)
	if !sample && !congested {
		return
	}
	a.mu.Lock()
	m := &a.mu
	from := int(m.limit)
	if sample {
		m.curMin = min(m.curMin, int64(rtt))
		if m.n++; m.n >= a.o.BaselineSamples {
			m.prevMin, m.curMin, m.n = m.curMin, math.MaxInt64, 0
		}
	}
	baseline := min(m.curMin, m.prevMin)
	switch {
	case congested || float64(rtt) > a.o.Tolerance*float64(baseline):
		m.limit = max(float64(a.o.MinLimit), m.limit*a.o.Backoff)
	case 2*inflight >= int64(m.limit):
		m.limit = min(float64(a.o.MaxLimit), m.limit+1)
	}
	to := int(m.limit)
	a.limit.Store(int64(to))
	a.mu.Unlock()
	if f := a.o.Hooks.OnLimitChange; f != nil && to != from {
		f(LimitChange{Dependency: a.name, From: from, To: to, Latency: rtt, Baseline: time.Duration(baseline)})
	}
}
