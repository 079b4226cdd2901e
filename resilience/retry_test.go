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

// flaky fails its first n calls with err, then succeeds; it records the
// fake time of every call.
type flaky struct {
	n     int
	err   error
	calls int
	at    []time.Duration
	start time.Time
}

func (f *flaky) do(context.Context) (int, error) {
	f.calls++
	f.at = append(f.at, time.Since(f.start))
	if f.calls <= f.n {
		return 0, f.err
	}
	return f.calls, nil
}

type retryAfter struct{ d time.Duration }

func (e retryAfter) Error() string             { return "try later" }
func (e retryAfter) RetryAfter() time.Duration { return e.d }

func TestRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustPipeline[int](t, resilience.Options{}, resilience.Retry{MaxAttempts: 5, BaseDelay: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond})
		for range 20 {
			f := &flaky{n: 4, err: errDown, start: time.Now()}
			v, err := p.Do(context.Background(), f.do)
			if err != nil || v != 5 {
				t.Fatalf("got %d, %v; want 5, nil", v, err)
			}
			// Full jitter: the k-th wait lies in [0, min(300ms, 100ms × 2^(k-1))].
			ceilings := []time.Duration{100, 200, 300, 300}
			for k := range 4 {
				if d := f.at[k+1] - f.at[k]; d < 0 || d > ceilings[k]*time.Millisecond {
					t.Fatalf("wait %d was %v, want at most %vms", k+1, d, ceilings[k])
				}
			}
		}
	})
}

func TestRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gaveUp []string
		p := mustPipeline[int](t, resilience.Options{Hooks: resilience.Hooks{OnGiveUp: func(_ context.Context, e resilience.RetryEvent) { gaveUp = append(gaveUp, e.Reason) }}},
			resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Second})
		f := &flaky{n: 1, err: retryAfter{5 * time.Second}, start: time.Now()}
		if _, err := p.Do(context.Background(), f.do); err != nil {
			t.Fatal(err)
		}
		if d := f.at[1] - f.at[0]; d < 5*time.Second {
			t.Errorf("retried after %v, want at least the Retry-After of 5s", d)
		}
		f = &flaky{n: 1, err: retryAfter{time.Minute}, start: time.Now()}
		if _, err := p.Do(context.Background(), f.do); !errors.As(err, new(retryAfter)) || f.calls != 1 {
			t.Errorf("Retry-After beyond MaxDelay: %d calls, error %v; want 1 call and the error", f.calls, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		f = &flaky{n: 1, err: retryAfter{3 * time.Second}, start: time.Now()}
		if _, err := p.Do(ctx, f.do); err == nil || f.calls != 1 {
			t.Errorf("deadline before the next attempt: %d calls, error %v; want 1 call and the error", f.calls, err)
		}
		want := []string{"Retry-After 1m0s exceeds MaxDelay 10s", "the deadline would pass before the next attempt"}
		if diff := cmp.Diff(want, gaveUp); diff != "" {
			t.Errorf("give-up reasons (-want +got):\n%s", diff)
		}
	})
}

func TestRetryDoesNotRetry(t *testing.T) {
	errNo := errors.New("validation")
	tests := []struct {
		name   string
		err    error
		reason string
	}{
		{"business error", errBusiness, "neutral error"},
		{"permanent", resilience.Permanent(errDown), "permanent error"},
		{"classifier", errNo, "not retryable"},
		{"open breaker", &resilience.OpenError{Dependency: "x"}, "rejected by a policy"},
		{"full bulkhead", &resilience.RejectedError{Reason: resilience.ErrBulkheadFull}, "rejected by a policy"},
		{"ordinary failure", errDown, "attempts exhausted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var reasons []string
				o := resilience.Options{
					Neutral: func(err error) bool { return errors.Is(err, errBusiness) },
					Hooks:   resilience.Hooks{OnGiveUp: func(_ context.Context, e resilience.RetryEvent) { reasons = append(reasons, e.Reason) }},
				}
				p := mustPipeline[int](t, o, resilience.Retry{MaxAttempts: 2, If: func(err error) bool { return err != errNo }})
				f := &flaky{n: 10, err: tt.err}
				_, err := p.Do(context.Background(), f.do)
				if !errors.Is(err, tt.err) {
					t.Errorf("error %v, want %v", err, tt.err)
				}
				wantCalls := 1
				if tt.reason == "attempts exhausted" {
					wantCalls = 2
				}
				if f.calls != wantCalls {
					t.Errorf("%d calls, want %d", f.calls, wantCalls)
				}
				if diff := cmp.Diff([]string{tt.reason}, reasons); diff != "" {
					t.Errorf("reasons (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestRetryStopsWhenCallerCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustPipeline[int](t, resilience.Options{}, resilience.Retry{MaxAttempts: 10, BaseDelay: time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		_, err := p.Do(ctx, func(context.Context) (int, error) {
			calls++
			if calls == 2 {
				cancel()
			}
			return 0, errDown
		})
		if !errors.Is(err, errDown) || calls != 2 {
			t.Errorf("got %d calls, %v; want 2 calls and the last error", calls, err)
		}
		ctx, cancel = context.WithCancel(context.Background())
		go func() {
			time.Sleep(500 * time.Millisecond) // cancel during the backoff
			cancel()
		}()
		calls = 0
		_, err = mustPipeline[int](t, resilience.Options{}, resilience.Retry{MaxAttempts: 10, BaseDelay: time.Second, MaxDelay: time.Second}).
			Do(ctx, func(context.Context) (int, error) { calls++; return 0, retryAfter{time.Second} })
		if !errors.Is(err, context.Canceled) || calls != 1 {
			t.Errorf("cancelled during backoff: %d calls, %v; want 1 call and context.Canceled", calls, err)
		}
	})
}

func TestBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget := must(resilience.NewBudget(resilience.BudgetOptions{Ratio: 0.1, NoFloor: true}))
		var rejections int
		o := resilience.Options{Name: "dep", Hooks: resilience.Hooks{OnReject: func(_ context.Context, r resilience.Rejection) {
			if r.Policy == "budget" {
				rejections++
			}
		}}}
		// Two pipelines share the budget: calls of both count.
		a := mustPipeline[int](t, o, resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond, Budget: budget})
		b := mustPipeline[int](t, o, resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond, Budget: budget})
		attempts, exhausted := 0, 0
		for i := range 100 {
			p := a
			if i%2 == 1 {
				p = b
			}
			f := &flaky{n: 1, err: errDown}
			_, err := p.Do(context.Background(), f.do)
			attempts += f.calls
			var be *resilience.BudgetError
			if errors.As(err, &be) {
				exhausted++
				if !errors.Is(err, resilience.ErrBudgetExhausted) || !errors.Is(err, errDown) || be.Dependency != "dep" || be.Attempts != 1 {
					t.Fatalf("budget error %#v", be)
				}
			} else if err != nil {
				t.Fatal(err)
			}
		}
		// A retry is allowed while retries < 10% of calls: calls 1, 11, 21… 91.
		if got, want := fmt.Sprint(attempts, exhausted, rejections), "110 90 90"; got != want {
			t.Errorf("attempts, exhausted, rejections = %s, want %s", got, want)
		}
		if c, r := budget.Counts(); c != 100 || r != 10 {
			t.Errorf("budget counts %d calls, %d retries; want 100, 10", c, r)
		}
		time.Sleep(10 * time.Second) // the window slides past every call
		if c, r := budget.Counts(); c != 0 || r != 0 {
			t.Errorf("after the window: %d calls, %d retries; want 0, 0", c, r)
		}
	})
}

func TestBudgetFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget := must(resilience.NewBudget(resilience.BudgetOptions{NoRatio: true, MinPerSecond: 2, Window: 5 * time.Second}))
		p := mustPipeline[int](t, resilience.Options{}, resilience.Retry{MaxAttempts: 2, BaseDelay: time.Millisecond, Budget: budget})
		retried := func(n int) int {
			r := 0
			for range n {
				f := &flaky{n: 1, err: errDown}
				p.Do(context.Background(), f.do)
				r += f.calls - 1
			}
			return r
		}
		if got := retried(50); got != 10 {
			t.Errorf("with a floor of 2/s over 5s: %d retries, want 10", got)
		}
		time.Sleep(5 * time.Second)
		if got := retried(50); got != 10 {
			t.Errorf("in the next window: %d retries, want 10", got)
		}
	})
}

func mustPipeline[T any](t testing.TB, o resilience.Options, policies ...resilience.Policy) *resilience.Pipeline[T] {
	t.Helper()
	p, err := resilience.New[T](o, policies...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
