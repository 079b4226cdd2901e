package resilience_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fjord-data/fjord/resilience"
)

// TestCancellation: wherever a call waits — for a rate-limiter turn, a
// bulkhead slot, a backoff, hedged attempts — the caller's cancellation
// ends the wait at once with the context's error, and the pipeline's own
// total timeout ends it with ErrTimeout.
func TestCancellation(t *testing.T) {
	tests := []struct {
		name     string
		policies func() []resilience.Policy
		fn       func(context.Context) (int, error)
	}{
		{"rate limiter turn", func() []resilience.Policy {
			rl := must(resilience.NewRateLimiter("dep", resilience.RateLimiterOptions{Rate: 0.001, MaxWait: time.Hour}))
			return []resilience.Policy{rl}
		}, ok},
		{"bulkhead queue", func() []resilience.Policy {
			bh := must(resilience.NewBulkhead("dep", resilience.BulkheadOptions{MaxConcurrent: 1, MaxQueue: 1}))
			return []resilience.Policy{bh}
		}, hang},
		{"backoff", func() []resilience.Policy {
			return []resilience.Policy{resilience.Retry{MaxAttempts: 3, BaseDelay: time.Hour, MaxDelay: time.Hour}}
		}, func(context.Context) (int, error) { return 0, retryAfter{time.Hour} }},
		{"hedged attempts", func() []resilience.Policy {
			return []resilience.Policy{resilience.Hedge{Delay: time.Millisecond, MaxHedges: 3}}
		}, hang},
	}
	for _, tt := range tests {
		for _, total := range []bool{false, true} {
			name := tt.name + map[bool]string{false: " cancelled by the caller", true: " ended by the total timeout"}[total]
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					policies := tt.policies()
					if total {
						policies = append([]resilience.Policy{resilience.Timeout(time.Second)}, policies...)
					}
					p := mustPipeline[int](t, resilience.Options{Name: "dep"}, policies...)
					if tt.name == "rate limiter turn" || tt.name == "bulkhead queue" {
						hold, release := context.WithCancel(context.Background())
						defer release()
						go p.Do(hold, hang) // takes the one turn or slot until the end
						synctest.Wait()
					}
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					var done atomic.Bool
					var err error
					go func() {
						_, err = p.Do(ctx, tt.fn)
						done.Store(true)
					}()
					if !total {
						time.Sleep(500 * time.Millisecond)
						cancel()
					}
					time.Sleep(time.Second)
					synctest.Wait()
					if !done.Load() {
						t.Fatal("the call still waits")
					}
					if total && tt.name == "backoff" {
						// The retry does not start a wait the deadline would cut:
						// it returns the last error at once.
						if !errors.As(err, new(retryAfter)) {
							t.Errorf("error %v, want the last attempt's", err)
						}
					} else if total && (!errors.Is(err, resilience.ErrTimeout) || !errors.As(err, new(*resilience.TimeoutError))) {
						t.Errorf("error %v, want the total timeout", err)
					}
					if !total && !errors.Is(err, context.Canceled) {
						t.Errorf("error %v, want context.Canceled", err)
					}
					cancel()
				})
			})
		}
	}
}
