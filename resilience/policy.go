package resilience

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy is one step of a Pipeline. The policies are *Breaker, *Breakers,
// *Bulkhead, *RateLimiter, *AdaptiveLimiter (stateful, built by their
// constructors, shareable), and Retry, Hedge, Timeout and Fallback (plain
// values). Other types cannot implement Policy.
type Policy interface {
	kind() kind
}

type kind int

const (
	kindFallback kind = iota
	kindTimeout
	kindRetry
	kindHedge
	kindRateLimit
	kindBulkhead
	kindAdaptive
	kindBreaker
)

func (*Breaker) kind() kind         { return kindBreaker }
func (*Breakers) kind() kind        { return kindBreaker }
func (*Bulkhead) kind() kind        { return kindBulkhead }
func (*RateLimiter) kind() kind     { return kindRateLimit }
func (*AdaptiveLimiter) kind() kind { return kindAdaptive }
func (Retry) kind() kind            { return kindRetry }
func (Hedge) kind() kind            { return kindHedge }
func (Timeout) kind() kind          { return kindTimeout }
func (Fallback[T]) kind() kind      { return kindFallback }

// Timeout bounds the time of everything inside it. Outside a Retry and a
// Hedge it is the total timeout of the call; inside, the timeout of each
// attempt (each hedged attempt). When
// the caller's deadline is sooner, the caller's context is used as is (and
// its expiry is the caller's, not an ErrTimeout). The function called must
// honour its context: a timeout cancels it, it cannot abandon it.
type Timeout time.Duration

// Retry runs the rest of the pipeline again after a retryable failure,
// waiting a full-jitter exponential backoff: a uniformly random delay in
// [0, min(MaxDelay, BaseDelay × 2^(attempt-1))), and at least a server's
// Retry-After (RetryAfterError). It never retries: an open breaker or any
// other rejection by a policy, errors declared neutral, errors marked
// Permanent, or an error after the caller's context ended. It gives up
// when the next attempt could not start before the context's deadline, and
// when Retry-After exceeds MaxDelay.
type Retry struct {
	// MaxAttempts counts the first attempt too (default 3; 1 disables
	// retrying).
	MaxAttempts int
	// BaseDelay is the first backoff's upper bound (default 100ms).
	BaseDelay time.Duration
	// MaxDelay caps every backoff and the Retry-After honoured (default 10s).
	MaxDelay time.Duration
	// Budget, when set, must have room for every retry; it is shared by
	// the pipelines that name it. Without one, retries can multiply the
	// load of an outage by MaxAttempts.
	Budget *Budget
	// If, when set, is asked about every other error: false means do not
	// retry.
	If func(error) bool
}

func (r *Retry) normalize() error {
	switch {
	case r.MaxAttempts < 0:
		return configErr("retry", fmt.Sprintf("MaxAttempts %d is negative", r.MaxAttempts), "use 0 for the default of 3 attempts, or a positive count")
	case r.MaxAttempts > 100:
		return configErr("retry", fmt.Sprintf("MaxAttempts %d is too many", r.MaxAttempts), "use at most 100 attempts (3 is usual)")
	case r.BaseDelay < 0 || r.MaxDelay < 0:
		return configErr("retry", fmt.Sprintf("BaseDelay %v or MaxDelay %v is negative", r.BaseDelay, r.MaxDelay), "use 0 for the defaults or positive durations")
	}
	r.MaxAttempts = cmpOr(r.MaxAttempts, 3)
	if r.BaseDelay == 0 {
		r.BaseDelay = 100 * time.Millisecond
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = max(10*time.Second, r.BaseDelay)
	}
	if r.MaxDelay < r.BaseDelay {
		return configErr("retry", fmt.Sprintf("MaxDelay %v is below BaseDelay %v", r.MaxDelay, r.BaseDelay), "raise MaxDelay or lower BaseDelay")
	}
	return nil
}

// String describes the policy as Pipeline.String prints it.
func (r Retry) String() string {
	s := fmt.Sprintf("retry(%d attempts, %v..%v", r.MaxAttempts, r.BaseDelay, r.MaxDelay)
	if r.Budget != nil {
		s += ", " + r.Budget.String()
	}
	return s + ")"
}

// backoff returns the wait before attempt+1, or a reason to give up.
func (r *Retry) backoff(attempt int, err error) (time.Duration, string) {
	shift := min(attempt-1, 32)
	ceiling := r.BaseDelay << shift
	if ceiling>>shift != r.BaseDelay || ceiling <= 0 || ceiling > r.MaxDelay { // overflowed, or over the cap
		ceiling = r.MaxDelay
	}
	d := time.Duration(rand.Int64N(int64(ceiling) + 1))
	var ra RetryAfterError
	if errors.As(err, &ra) {
		after := ra.RetryAfter()
		if after > r.MaxDelay {
			return 0, fmt.Sprintf("Retry-After %v exceeds MaxDelay %v", after, r.MaxDelay)
		}
		d = max(d, after)
	}
	return d, ""
}

// Hedge starts another concurrent attempt when the current ones have not
// finished after Delay, up to MaxHedges extra attempts, and returns the
// first result that is a success or a definite answer (an error the retry
// policy would not retry); then it cancels the others and waits for them
// to return. Use it for idempotent calls only (see WithoutHedging). A
// successful result that lost the race is discarded (a Transport closes
// its body). A panic in an attempt is re-panicked with the same value on
// the caller's goroutine once every attempt has returned, as a panic
// without hedging would reach the caller.
type Hedge struct {
	Delay     time.Duration // required, > 0
	MaxHedges int           // default 1
	// Budget, when set, must have room for every extra attempt, as for a
	// retry, so that hedging cannot double the load on a slow dependency.
	// A call is counted in it once (by the Retry when it names the same
	// budget, else by the Hedge).
	Budget *Budget
}

func (h *Hedge) normalize() error {
	switch {
	case h.Delay <= 0:
		return configErr("hedge", fmt.Sprintf("Delay %v is not positive", h.Delay),
			"set Delay to about the dependency's p95 latency; a zero delay would double every call")
	case h.MaxHedges < 0 || h.MaxHedges > 10:
		return configErr("hedge", fmt.Sprintf("MaxHedges %d is outside [0, 10]", h.MaxHedges), "use 0 for the default of 1 extra attempt, or up to 10")
	}
	h.MaxHedges = cmpOr(h.MaxHedges, 1)
	return nil
}

// String describes the policy as Pipeline.String prints it.
func (h Hedge) String() string {
	s := fmt.Sprintf("hedge(after %v, up to %d", h.Delay, h.MaxHedges)
	if h.Budget != nil {
		s += ", " + h.Budget.String()
	}
	return s + ")"
}

// Fallback replaces a failure with the result of Func. It must be the
// outermost policy, so that it sees every failure, including an open
// breaker and a full bulkhead. By default it applies to every error except
// neutral ones and those after the caller's context ended; If narrows that.
// A cache serves stale entries from here: Func receives the call's context
// (where the Transport puts the request, see RequestFrom) and the error.
type Fallback[T any] struct {
	Func func(ctx context.Context, err error) (T, error)
	If   func(error) bool
}

// String describes the policy as Pipeline.String prints it.
func (Fallback[T]) String() string { return "fallback" }
