package resilience_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/fjord-data/fjord/resilience"
)

func ok(context.Context) (int, error) { return 1, nil }

// happyPath builds breaker + retry (with budget) + bulkhead + rate limiter,
// the combination BENCHMARKS.md reports.
func happyPath(b testing.TB, bo resilience.BreakerOptions) *resilience.Pipeline[int] {
	b.Helper()
	budget := must(resilience.NewBudget(resilience.BudgetOptions{}))
	limiter := must(resilience.NewRateLimiter("dep", resilience.RateLimiterOptions{Rate: 1e9, Burst: 10_000_000}))
	bulkhead := must(resilience.NewBulkhead("dep", resilience.BulkheadOptions{MaxConcurrent: 64}))
	breaker := must(resilience.NewBreaker("dep", bo))
	p, err := resilience.New[int](resilience.Options{Name: "dep"},
		resilience.Retry{MaxAttempts: 3, Budget: budget}, limiter, bulkhead, breaker)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// happyPathOptions are the breaker configurations measured: the default
// (count window, no slow-call tracking: one clock read per call) and with
// slow-call tracking over a time window (a second clock read).
var happyPathOptions = []struct {
	name string
	o    resilience.BreakerOptions
}{
	{"count-window", resilience.BreakerOptions{}},
	{"time-window+slow-calls", resilience.BreakerOptions{WindowDuration: 10 * time.Second, SlowCall: time.Second}},
}

func BenchmarkHappyPath(b *testing.B) {
	for _, c := range happyPathOptions {
		b.Run(c.name, func(b *testing.B) { benchSerial(b, happyPath(b, c.o)) })
	}
}

func BenchmarkHappyPathParallel(b *testing.B) {
	for _, c := range happyPathOptions {
		b.Run(c.name, func(b *testing.B) { benchParallel(b, happyPath(b, c.o)) })
	}
}

func benchSerial(b *testing.B, p *resilience.Pipeline[int]) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Do(ctx, ok); err != nil {
			b.Fatal(err)
		}
	}
}

func benchParallel(b *testing.B, p *resilience.Pipeline[int]) {
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0))) // 8 goroutines (GOMAXPROCS ≤ 8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Do(ctx, ok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBreakerOnly: one breaker, the figure to set beside gobreaker's.
func BenchmarkBreakerOnly(b *testing.B) {
	p, err := resilience.New[int](resilience.Options{Name: "dep"}, must(resilience.NewBreaker("dep", resilience.BreakerOptions{})))
	if err != nil {
		b.Fatal(err)
	}
	benchSerial(b, p)
}

// BenchmarkDirect: the called function alone.
func BenchmarkDirect(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		ok(ctx)
	}
}

func okErr(context.Context) error { return nil }

// BenchmarkDoErr: the error-only form through the same policies.
func BenchmarkDoErr(b *testing.B) {
	p := happyPath(b, resilience.BreakerOptions{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.DoErr(ctx, okErr); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHappyPathAllocatesNothing guards the zero-allocation claim that
// BENCHMARKS.md measures.
func TestHappyPathAllocatesNothing(t *testing.T) {
	for _, c := range happyPathOptions {
		p := happyPath(t, c.o)
		ctx := context.Background()
		if n := testing.AllocsPerRun(1000, func() { p.Do(ctx, ok) }); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", c.name, n)
		}
		if n := testing.AllocsPerRun(1000, func() { p.DoErr(ctx, okErr) }); n != 0 {
			t.Errorf("%s, DoErr: %v allocations per call, want 0", c.name, n)
		}
	}
}

// BenchmarkAttemptTimeout: a retry with a per-attempt timeout, whose
// context is the allocation a timeout costs.
func BenchmarkAttemptTimeout(b *testing.B) {
	p, err := resilience.New[int](resilience.Options{Name: "dep"}, resilience.Retry{}, resilience.Timeout(time.Second))
	if err != nil {
		b.Fatal(err)
	}
	benchSerial(b, p)
}
