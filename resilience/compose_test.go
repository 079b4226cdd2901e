package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/resilience"
)

// events records every hook as one line.
type events []string

func (e *events) hooks() resilience.Hooks {
	add := func(format string, args ...any) { *e = append(*e, fmt.Sprintf(format, args...)) }
	return resilience.Hooks{
		OnStateChange: func(c resilience.StateChange) { add("breaker %s→%s", c.From, c.To) },
		OnReject:      func(_ context.Context, r resilience.Rejection) { add("reject %s", r.Policy) },
		OnOutcome:     func(_ context.Context, o resilience.OutcomeEvent) { add("%s after %v", o.Outcome, o.Latency) },
		OnWait:        func(_ context.Context, w resilience.WaitEvent) { add("waited %v for %s", w.Waited, w.Policy) },
		OnRetry:       func(_ context.Context, r resilience.RetryEvent) { add("retry after attempt %d", r.Attempt) },
		OnGiveUp: func(_ context.Context, r resilience.RetryEvent) {
			add("give up after attempt %d: %s", r.Attempt, r.Reason)
		},
		OnTimeout:     func(_ context.Context, te resilience.TimeoutError) { add("timeout %s", te.Scope) },
		OnHedge:       func(_ context.Context, h resilience.HedgeEvent) { add("hedge %d", h.Attempt) },
		OnFallback:    func(_ context.Context, f resilience.FallbackEvent) { add("fallback") },
		OnLimitChange: func(l resilience.LimitChange) { add("limit %d→%d", l.From, l.To) },
	}
}

// TestRetryOutsideBreaker: each attempt is one outcome in the breaker; once
// it opens, the retry stops at once and later calls fail fast without an
// attempt.
func TestRetryOutsideBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		br := must(resilience.NewBreaker("dep", resilience.BreakerOptions{WindowCalls: 4, MinCalls: 4, Hooks: ev.hooks()}))
		p := mustPipeline[int](t, resilience.Options{Name: "dep", Hooks: ev.hooks(), Neutral: func(err error) bool { return errors.Is(err, errBusiness) }},
			resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond}, br)
		f := &flaky{n: 100, err: errDown}
		if _, err := p.Do(context.Background(), f.do); err != errDown || f.calls != 3 {
			t.Errorf("first call: %v after %d attempts", err, f.calls)
		}
		if c, fl, _ := br.Counts(); c != 3 || fl != 3 {
			t.Errorf("breaker counted %d calls, %d failures; want one failure per attempt: 3, 3", c, fl)
		}
		_, err := p.Do(context.Background(), f.do)
		var oe *resilience.OpenError
		if !errors.As(err, &oe) || oe.Dependency != "dep" || f.calls != 4 {
			t.Errorf("second call: %v after %d attempts in all; want ErrOpen after attempt 4", err, f.calls)
		}
		if _, err := p.Do(context.Background(), f.do); !errors.Is(err, resilience.ErrOpen) || f.calls != 4 {
			t.Errorf("third call: %v, %d attempts in all; want ErrOpen without an attempt", err, f.calls)
		}
		want := events{
			"failure after 0s", "retry after attempt 1", "failure after 0s", "retry after attempt 2", "failure after 0s",
			"give up after attempt 3: attempts exhausted",
			"breaker closed→open", "failure after 0s", "retry after attempt 1", "reject breaker", "give up after attempt 2: rejected by a policy",
			"reject breaker", "give up after attempt 1: rejected by a policy",
		}
		if diff := cmp.Diff(want, ev); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

// TestAdmissionOutsideBreaker: a rejected call never reaches the breaker,
// and a retry waiting out its backoff holds no bulkhead slot.
func TestAdmissionOutsideBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		br := must(resilience.NewBreaker("dep", resilience.BreakerOptions{WindowCalls: 2, MinCalls: 2}))
		rl := must(resilience.NewRateLimiter("dep", resilience.RateLimiterOptions{Rate: 1}))
		bh := must(resilience.NewBulkhead("dep", resilience.BulkheadOptions{MaxConcurrent: 1}))
		hooks := ev.hooks()
		held := -1
		hooks.OnRetry = func(context.Context, resilience.RetryEvent) { held = bh.InFlight() }
		p := mustPipeline[int](t, resilience.Options{Name: "dep", Hooks: hooks}, resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond}, rl, bh, br)
		f := &flaky{n: 1, err: errDown}
		_, err := p.Do(context.Background(), f.do)
		if !errors.Is(err, resilience.ErrRateLimited) || f.calls != 1 || held != 0 {
			t.Errorf("got %v after %d attempts, %d slots held during the backoff; want ErrRateLimited, 1, 0", err, f.calls, held)
		}
		if c, fl, _ := br.Counts(); c != 1 || fl != 1 {
			t.Errorf("breaker counted %d calls, %d failures; want the one attempt that ran: 1, 1", c, fl)
		}
		if diff := cmp.Diff(events{"failure after 0s", "reject ratelimit", "give up after attempt 2: rejected by a policy"}, ev); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

// TestTimeoutsAreFailures: the expiry of the pipeline's attempt timeout
// counts as a failure of the dependency wherever the timeout sits inside
// the retry; the caller's own deadline does not.
func TestTimeoutsAreFailures(t *testing.T) {
	for _, inside := range []bool{true, false} {
		t.Run(fmt.Sprintf("timeout inside breaker %v", inside), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				br := must(resilience.NewBreaker("dep", resilience.BreakerOptions{WindowCalls: 10, MinCalls: 10}))
				policies := []resilience.Policy{resilience.Retry{MaxAttempts: 2, BaseDelay: time.Millisecond}, resilience.Timeout(100 * time.Millisecond), br}
				if inside {
					policies[1], policies[2] = policies[2], policies[1]
				}
				p := mustPipeline[int](t, resilience.Options{Name: "dep"}, policies...)
				_, err := p.Do(context.Background(), hang)
				if !errors.Is(err, resilience.ErrTimeout) {
					t.Errorf("error %v, want ErrTimeout", err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				if _, err := p.Do(ctx, hang); err != context.DeadlineExceeded {
					t.Errorf("caller's deadline: %v, want context.DeadlineExceeded", err)
				}
				if c, fl, _ := br.Counts(); c != 2 || fl != 2 {
					t.Errorf("breaker counted %d calls, %d failures; want the 2 timed-out attempts", c, fl)
				}
			})
		})
	}
}

// TestBreakersPerDependency: a registry keeps one breaker per dependency,
// named by the context or by the pipeline, and stays within its bound.
func TestBreakersPerDependency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := must(resilience.NewBreakers(2, resilience.BreakerOptions{WindowCalls: 2, MinCalls: 2}))
		p := mustPipeline[int](t, resilience.Options{Name: "default"}, reg)
		fail := func(context.Context) (int, error) { return 0, errDown }
		a := resilience.WithDependency(context.Background(), "a")
		p.Do(a, fail)
		p.Do(a, fail)
		if _, err := p.Do(a, ok); !errors.Is(err, resilience.ErrOpen) {
			t.Errorf("a: %v, want ErrOpen", err)
		}
		if _, err := p.Do(resilience.WithDependency(context.Background(), "b"), ok); err != nil {
			t.Errorf("b: %v, want success: its breaker is its own", err)
		}
		time.Sleep(2 * time.Second)
		p.Do(context.Background(), ok) // "default": the third breaker evicts b, the least recently used closed one
		var names []string
		for b := range reg.All {
			names = append(names, b.Name()+"="+b.State().String())
		}
		if diff := cmp.Diff([]string{"a=open", "default=closed"}, names, sortStrings); diff != "" || reg.Len() != 2 {
			t.Errorf("breakers (-want +got):\n%s\nlen %d", diff, reg.Len())
		}
	})
}

func TestDoErr(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := must(resilience.NewBreaker("dep", resilience.BreakerOptions{}))
		p := mustPipeline[struct{}](t, resilience.Options{Name: "dep"}, resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond}, br)
		attempts := 0
		err := p.DoErr(context.Background(), func(context.Context) error {
			if attempts++; attempts == 1 {
				return errDown
			}
			return nil
		})
		if c, fl, _ := br.Counts(); err != nil || attempts != 2 || c != 2 || fl != 1 {
			t.Errorf("got %v after %d attempts, breaker %d calls %d failures; want nil after 2, 2 calls 1 failure", err, attempts, c, fl)
		}
	})
}

func TestWaitHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		rl := must(resilience.NewRateLimiter("dep", resilience.RateLimiterOptions{Rate: 10, MaxWait: time.Second}))
		bh := must(resilience.NewBulkhead("dep", resilience.BulkheadOptions{MaxConcurrent: 1, MaxQueue: 1}))
		p := mustPipeline[int](t, resilience.Options{Name: "dep", Hooks: ev.hooks()}, rl, bh)
		slow := func(context.Context) (int, error) { time.Sleep(300 * time.Millisecond); return 0, nil }
		done := make(chan struct{})
		go func() { p.Do(context.Background(), slow); close(done) }()
		synctest.Wait()
		p.Do(context.Background(), ok) // its turn comes after 100ms, its slot after 300ms
		<-done
		if diff := cmp.Diff(events{"waited 100ms for ratelimit", "waited 200ms for bulkhead"}, ev); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}
