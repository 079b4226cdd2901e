package resilience_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/resilience"
)

// policies used by the order tests.
type kit struct {
	breaker  *resilience.Breaker
	breakers *resilience.Breakers
	bulkhead *resilience.Bulkhead
	limiter  *resilience.RateLimiter
	adaptive *resilience.AdaptiveLimiter
	budget   *resilience.Budget
}

func newKit(t testing.TB) kit {
	t.Helper()
	var k kit
	var err error
	check := func(e error) {
		if e != nil && err == nil {
			err = e
		}
	}
	k.breaker, err = resilience.NewBreaker("db", resilience.BreakerOptions{})
	var e error
	k.breakers, e = resilience.NewBreakers(10, resilience.BreakerOptions{})
	check(e)
	k.bulkhead, e = resilience.NewBulkhead("db", resilience.BulkheadOptions{MaxConcurrent: 4, MaxQueue: 2})
	check(e)
	k.limiter, e = resilience.NewRateLimiter("db", resilience.RateLimiterOptions{Rate: 100, Burst: 10})
	check(e)
	k.adaptive, e = resilience.NewAdaptiveLimiter("db", resilience.AdaptiveOptions{})
	check(e)
	k.budget, e = resilience.NewBudget(resilience.BudgetOptions{})
	check(e)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestOrder(t *testing.T) {
	k := newKit(t)
	fb := resilience.Fallback[int]{Func: func(context.Context, error) (int, error) { return 0, nil }}
	retry := resilience.Retry{Budget: k.budget}
	tests := []struct {
		name     string
		policies []resilience.Policy
		want     string // String() of the pipeline, or the error
	}{
		{"canonical", []resilience.Policy{fb, resilience.Timeout(2 * time.Second), retry, resilience.Hedge{Delay: 50 * time.Millisecond},
			k.limiter, k.bulkhead, k.adaptive, k.breaker, resilience.Timeout(500 * time.Millisecond)},
			`fallback → timeout(total 2s) → retry(3 attempts, 100ms..10s, budget 10%+5/s) → hedge(after 50ms, up to 1) → ratelimit("db" 100/s burst 10) → bulkhead("db" 4+2 queued) → adaptive("db" 1..1000) → breaker("db") → timeout(attempt 500ms)`},
		{"admission in any order", []resilience.Policy{k.bulkhead, k.adaptive, k.limiter, k.breakers},
			`bulkhead("db" 4+2 queued) → adaptive("db" 1..1000) → ratelimit("db" 100/s burst 10) → breakers(per dependency, max 10)`},
		{"attempt timeout outside the breaker", []resilience.Policy{retry, resilience.Timeout(time.Second), k.breaker},
			`retry(3 attempts, 100ms..10s, budget 10%+5/s) → timeout(attempt 1s) → breaker("db")`},
		{"timeout alone is total", []resilience.Policy{resilience.Timeout(time.Second), k.breaker},
			`timeout(total 1s) → breaker("db")`},
		{"empty", nil, "(no policies)"},
		{"fallback inside", []resilience.Policy{retry, fb},
			`resilience: invalid pipeline order: in retry(3 attempts, 100ms..10s, budget 10%+5/s) → fallback, fallback is inside retry; move fallback before retry: the fallback must be outermost so that it sees every failure, including an open breaker and a full bulkhead`},
		{"retry inside breaker", []resilience.Policy{k.breaker, retry},
			`resilience: invalid pipeline order: in breaker("db") → retry(3 attempts, 100ms..10s, budget 10%+5/s), retry is inside breaker("db"); move retry before breaker("db"): the retry must be outside the hedge, admission policies and breaker so that every attempt is limited and counted, a waiting retry holds no slot, and an open breaker fails fast instead of being retried`},
		{"bulkhead outside retry", []resilience.Policy{k.bulkhead, resilience.Retry{}},
			`resilience: invalid pipeline order: in bulkhead("db" 4+2 queued) → retry(3 attempts, 100ms..10s), retry is inside bulkhead("db"); move retry before bulkhead("db"): the retry must be outside the hedge, admission policies and breaker so that every attempt is limited and counted, a waiting retry holds no slot, and an open breaker fails fast instead of being retried`},
		{"bulkhead inside breaker", []resilience.Policy{k.breaker, k.bulkhead},
			`resilience: invalid pipeline order: in breaker("db") → bulkhead("db" 4+2 queued), bulkhead("db") is inside breaker("db"); move bulkhead("db") before breaker("db"): a rejection by a rate limiter, bulkhead or adaptive limiter must not use up a half-open breaker's probes nor count as a failure of the dependency`},
		{"hedge inside bulkhead", []resilience.Policy{k.bulkhead, resilience.Hedge{Delay: time.Millisecond}},
			`resilience: invalid pipeline order: in bulkhead("db" 4+2 queued) → hedge(after 1ms, up to 1), hedge is inside bulkhead("db"); move hedge before bulkhead("db"): every hedged attempt must pass the admission policies and the breaker on its own`},
		{"two retries", []resilience.Policy{resilience.Retry{}, resilience.Retry{}},
			`resilience: invalid pipeline order: retry(3 attempts, 100ms..10s) → retry(3 attempts, 100ms..10s) has retry and retry; keep one of them`},
		{"two breakers", []resilience.Policy{k.breaker, k.breakers},
			`resilience: invalid pipeline order: breaker("db") → breakers(per dependency, max 10) has breaker("db") and breakers; keep one of them`},
		{"attempt timeout not shorter", []resilience.Policy{resilience.Timeout(time.Second), resilience.Retry{}, resilience.Timeout(time.Second)},
			`resilience: invalid pipeline timeouts: the attempt timeout 1s is not shorter than the total 1s, so a retry could never run; shorten the attempt timeout or drop it`},
		{"negative timeout", []resilience.Policy{resilience.Timeout(-time.Second)},
			`resilience: invalid timeout: -1s is not positive; use a positive duration, or leave the timeout out`},
		{"zero hedge delay", []resilience.Policy{resilience.Hedge{}},
			`resilience: invalid hedge: Delay 0s is not positive; set Delay to about the dependency's p95 latency; a zero delay would double every call`},
		{"negative attempts", []resilience.Policy{resilience.Retry{MaxAttempts: -1}},
			`resilience: invalid retry: MaxAttempts -1 is negative; use 0 for the default of 3 attempts, or a positive count`},
		{"max below base", []resilience.Policy{resilience.Retry{BaseDelay: time.Second, MaxDelay: time.Millisecond}},
			`resilience: invalid retry: MaxDelay 1ms is below BaseDelay 1s; raise MaxDelay or lower BaseDelay`},
		{"fallback of another type", []resilience.Policy{resilience.Fallback[string]{Func: func(context.Context, error) (string, error) { return "", nil }}},
			`resilience: invalid pipeline: policy resilience.Fallback[string] does not fit a pipeline of int; build the Fallback with the pipeline's result type`},
		{"fallback without func", []resilience.Policy{resilience.Fallback[int]{}},
			`resilience: invalid fallback: Func is nil; set Func to the function that replaces a failure`},
		{"nil policy", []resilience.Policy{nil},
			`resilience: invalid pipeline: policy 1 is nil; remove it or build it with its constructor`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := resilience.New[int](resilience.Options{Name: "db"}, tt.policies...)
			var got string
			if err != nil {
				got = err.Error()
				if !errors.Is(err, resilience.ErrInvalidConfig) {
					t.Errorf("error %v does not match ErrInvalidConfig", err)
				}
			} else {
				got = p.String()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestInvalidPolicies(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // a fragment of the error: what to change
	}{
		{"budget over 100%", second(resilience.NewBudget(resilience.BudgetOptions{Ratio: 1.5})), "a budget over 100% lets retries multiply load"},
		{"negative budget", second(resilience.NewBudget(resilience.BudgetOptions{Ratio: -0.1})), "Ratio -0.1 is outside [0, 1]"},
		{"negative floor", second(resilience.NewBudget(resilience.BudgetOptions{MinPerSecond: -1})), "MinPerSecond -1 is negative"},
		{"budget window", second(resilience.NewBudget(resilience.BudgetOptions{Window: 1500 * time.Millisecond})), "not a whole number of seconds"},
		{"failure rate", second(resilience.NewBreaker("x", resilience.BreakerOptions{FailureRate: 2})), "FailureRate 2 is not a fraction"},
		{"negative window", second(resilience.NewBreaker("x", resilience.BreakerOptions{WindowCalls: -1})), "must not be negative"},
		{"two windows", second(resilience.NewBreaker("x", resilience.BreakerOptions{WindowCalls: 10, WindowDuration: time.Second})), "not both"},
		{"min calls over window", second(resilience.NewBreaker("x", resilience.BreakerOptions{WindowCalls: 10, MinCalls: 20})), "could never trip"},
		{"negative slow call", second(resilience.NewBreaker("x", resilience.BreakerOptions{SlowCall: -1})), "SlowCall -1ns is negative"},
		{"registry size", second(resilience.NewBreakers(-1, resilience.BreakerOptions{})), "max -1 is negative"},
		{"bulkhead size", second(resilience.NewBulkhead("x", resilience.BulkheadOptions{MaxConcurrent: -1})), "MaxConcurrent -1 is negative"},
		{"bulkhead queue", second(resilience.NewBulkhead("x", resilience.BulkheadOptions{MaxQueue: -3})), "MaxQueue -3 is negative"},
		{"rate", second(resilience.NewRateLimiter("x", resilience.RateLimiterOptions{})), "Rate 0 is not a positive rate"},
		{"burst", second(resilience.NewRateLimiter("x", resilience.RateLimiterOptions{Rate: 1, Burst: -1})), "Burst -1 is negative"},
		{"adaptive order", second(resilience.NewAdaptiveLimiter("x", resilience.AdaptiveOptions{MinLimit: 10, MaxLimit: 5})), "make MinLimit ≤ InitialLimit ≤ MaxLimit"},
		{"adaptive tolerance", second(resilience.NewAdaptiveLimiter("x", resilience.AdaptiveOptions{Tolerance: 0.5})), "Tolerance 0.5 is not above 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, resilience.ErrInvalidConfig) {
				t.Fatalf("got %v, want an ErrInvalidConfig", tt.err)
			}
			if !strings.Contains(tt.err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", tt.err, tt.want)
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }
