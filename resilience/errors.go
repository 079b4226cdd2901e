package resilience

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinels for the conditions the policies report. Every error a policy
// returns matches one of them with errors.Is, and carries a detail struct
// (errors.As) naming the dependency.
var (
	// ErrOpen: the circuit breaker rejected the call without running it.
	// It is never retried. Detail: *OpenError.
	ErrOpen = errors.New("resilience: circuit breaker is open")
	// ErrBulkheadFull: all slots and queue places of a bulkhead were taken,
	// or the wait for a slot exceeded its limit. Detail: *RejectedError.
	ErrBulkheadFull = errors.New("resilience: bulkhead is full")
	// ErrRateLimited: the rate limiter had no token within the allowed
	// wait. Detail: *RejectedError.
	ErrRateLimited = errors.New("resilience: rate limit exceeded")
	// ErrConcurrencyLimited: the adaptive concurrency limiter's current
	// limit was reached. Detail: *RejectedError.
	ErrConcurrencyLimited = errors.New("resilience: adaptive concurrency limit reached")
	// ErrBudgetExhausted: a retry was due but the shared retry budget had
	// no room; the last attempt's error is wrapped. Detail: *BudgetError.
	ErrBudgetExhausted = errors.New("resilience: retry budget exhausted")
	// ErrTimeout: a pipeline timeout (total or per attempt) expired. It
	// also matches context.DeadlineExceeded. Detail: *TimeoutError.
	ErrTimeout = errors.New("resilience: timeout")
	// ErrInvalidConfig: a policy or pipeline was built with an invalid
	// configuration. Detail: *ConfigError.
	ErrInvalidConfig = errors.New("resilience: invalid configuration")
)

// OpenError is the detail of ErrOpen.
type OpenError struct {
	Dependency string
	State      State         // StateOpen, or StateHalfOpen when all probes are taken
	RetryIn    time.Duration // time until the breaker lets probes through (0 when half-open)
}

// Error names the dependency and when probes resume.
func (e *OpenError) Error() string {
	if e.State == StateHalfOpen {
		return fmt.Sprintf("resilience: circuit breaker for %q is half-open and all its probes are in flight", e.Dependency)
	}
	return fmt.Sprintf("resilience: circuit breaker for %q is open (probes in %v)", e.Dependency, e.RetryIn)
}

// Is reports whether target is ErrOpen.
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// RejectedError is the detail of ErrBulkheadFull, ErrRateLimited and
// ErrConcurrencyLimited: an admission policy refused the call before it
// reached the dependency.
type RejectedError struct {
	Dependency string
	Policy     string // "bulkhead", "ratelimit" or "adaptive"
	Limit      int    // the limit in force (slots, burst, current concurrency limit)
	Reason     error  // the sentinel
}

// Error names the condition, the dependency and the limit.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("%v for %q (limit %d)", e.Reason, e.Dependency, e.Limit)
}

// Unwrap returns the sentinel.
func (e *RejectedError) Unwrap() error { return e.Reason }

// BudgetError is the detail of ErrBudgetExhausted. Unwrap returns the last
// attempt's error, so errors.Is sees both conditions.
type BudgetError struct {
	Dependency string
	Attempts   int
	Last       error
}

// Error names the dependency, the attempts made and the last error.
func (e *BudgetError) Error() string {
	return fmt.Sprintf("resilience: retry budget exhausted for %q after %d attempt(s): %v", e.Dependency, e.Attempts, e.Last)
}

// Is reports whether target is ErrBudgetExhausted.
func (e *BudgetError) Is(target error) bool { return target == ErrBudgetExhausted }

// Unwrap returns the last attempt's error.
func (e *BudgetError) Unwrap() error { return e.Last }

// TimeoutError is the detail of ErrTimeout.
type TimeoutError struct {
	Dependency string
	Scope      string // "total" or "attempt"
	Timeout    time.Duration
}

// Error names the timeout and the dependency.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("resilience: %s timeout of %v for %q expired", e.Scope, e.Timeout, e.Dependency)
}

// Is reports whether target is ErrTimeout or context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

// ConfigError is the detail of ErrInvalidConfig: what is wrong and what to
// change.
type ConfigError struct {
	Policy  string // e.g. `breaker "payments"`, "pipeline"
	Problem string
	Fix     string
}

// Error says what is invalid and what to change.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("resilience: invalid %s: %s; %s", e.Policy, e.Problem, e.Fix)
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// configErr builds a *ConfigError; args, if any, format problem.
func configErr(policy, problem, fix string, args ...any) error {
	if len(args) > 0 {
		problem = fmt.Sprintf(problem, args...)
	}
	return &ConfigError{Policy: policy, Problem: problem, Fix: fix}
}

// permanent marks an error as not retryable.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that no retry policy retries it. errors.Is and
// errors.As see through the wrapper.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// RetryAfterError is implemented by errors that carry a server's hint of
// when to retry (an HTTP Retry-After header, a gRPC retry pushback). The
// retry policy waits at least that long, and gives up when the hint is
// longer than its MaxDelay.
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// isRejection reports whether err is one of this package's own refusals,
// which never reached the dependency.
func isRejection(err error) bool {
	return errors.Is(err, ErrOpen) || errors.Is(err, ErrBulkheadFull) || errors.Is(err, ErrRateLimited) ||
		errors.Is(err, ErrConcurrencyLimited) || errors.Is(err, ErrBudgetExhausted)
}
