package resilience

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// RateLimiterOptions configure a RateLimiter.
type RateLimiterOptions struct {
	// Rate is the sustained rate in calls per second (required, > 0).
	Rate float64
	// Burst is how many calls may go at once after a quiet period
	// (default 1).
	Burst int
	// MaxWait is how long a call may wait for its turn; 0 rejects at once
	// with ErrRateLimited when no token is free.
	MaxWait time.Duration
}

// RateLimiter is a token bucket implemented as a generic cell rate
// algorithm: one atomic "theoretical arrival time", advanced by one
// interval per call with a compare-and-swap. It is safe for concurrent use
// and may be shared by pipelines. A call that waits has reserved its turn;
// if its context ends first the turn is given back unless a later call
// has reserved one since.
type RateLimiter struct {
	name     string
	o        RateLimiterOptions
	clk      clock
	interval int64 // nanoseconds per token
	tau      int64 // tolerance: (Burst-1) intervals
	tat      atomic.Int64
}

// NewRateLimiter returns a limiter or a *ConfigError.
func NewRateLimiter(dependency string, o RateLimiterOptions) (*RateLimiter, error) {
	p := fmt.Sprintf("rate limiter %q", dependency)
	switch {
	case !(o.Rate > 0) || math.IsInf(o.Rate, 0) || o.Rate > 1e9:
		return nil, configErr(p, fmt.Sprintf("Rate %v is not a positive rate", o.Rate), "set Rate to the calls per second allowed, at most 1e9")
	case o.Burst < 0:
		return nil, configErr(p, fmt.Sprintf("Burst %d is negative", o.Burst), "use 0 for the default of 1 or a positive burst")
	case o.MaxWait < 0:
		return nil, configErr(p, fmt.Sprintf("MaxWait %v is negative", o.MaxWait), "use 0 to reject at once, or a positive wait")
	}
	if o.Burst == 0 {
		o.Burst = 1
	}
	iv := int64(float64(time.Second) / o.Rate)
	l := &RateLimiter{name: dependency, o: o, clk: newClock(), interval: iv, tau: int64(o.Burst-1) * iv}
	l.tat.Store(math.MinInt64 / 2)
	return l, nil
}

// String describes the limiter as Pipeline.String prints it.
func (l *RateLimiter) String() string {
	return fmt.Sprintf("ratelimit(%q %g/s burst %d)", l.name, l.o.Rate, l.o.Burst)
}

// take reserves a turn at limiter time now and returns how long to wait
// for it and the reservation (for refund), or ErrRateLimited.
func (l *RateLimiter) take(now int64) (time.Duration, int64, error) {
	fresh := false
	for {
		tat := l.tat.Load()
		t := max(tat, now)
		wait := t - now - l.tau
		if wait > int64(l.o.MaxWait) {
			if !fresh {
				// now may be stale (read before the caller was descheduled):
				// judge with a fresh reading before refusing.
				now, fresh = l.clk.now(), true
				continue
			}
			return 0, 0, &RejectedError{Dependency: l.name, Policy: "ratelimit", Limit: l.o.Burst, Reason: ErrRateLimited}
		}
		if l.tat.CompareAndSwap(tat, t+l.interval) {
			return time.Duration(max(wait, 0)), t + l.interval, nil
		}
	}
}

// refund gives back the turn reserved by take, if it is still the last one.
func (l *RateLimiter) refund(reserved int64) {
	l.tat.CompareAndSwap(reserved, reserved-l.interval)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
