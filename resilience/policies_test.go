package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fjord-data/fjord/resilience"
)

// hang blocks until its context ends.
func hang(ctx context.Context) (int, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

func TestTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var timeouts []string
		o := resilience.Options{Name: "dep", Hooks: resilience.Hooks{OnTimeout: func(_ context.Context, e resilience.TimeoutError) {
			timeouts = append(timeouts, fmt.Sprintf("%s %v", e.Scope, e.Timeout))
		}}}
		p := mustPipeline[int](t, o, resilience.Timeout(time.Second), resilience.Retry{MaxAttempts: 5, BaseDelay: time.Millisecond},
			resilience.Timeout(300*time.Millisecond))
		start := time.Now()
		_, err := p.Do(context.Background(), hang)
		var te *resilience.TimeoutError
		if !errors.As(err, &te) || te.Scope != "total" || !errors.Is(err, resilience.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want the total timeout", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("returned after %v, want 1s", d)
		}
		want := []string{"attempt 300ms", "attempt 300ms", "attempt 300ms", "total 1s"}
		if diff := cmp.Diff(want, timeouts); diff != "" {
			t.Errorf("timeouts (-want +got):\n%s", diff)
		}

		// The context names the dependency in the error.
		_, err = p.Do(resilience.WithDependency(context.Background(), "prices.internal"), hang)
		if !errors.As(err, &te) || te.Dependency != "prices.internal" {
			t.Errorf("error %v, want a timeout naming prices.internal", err)
		}

		// A caller's deadline shorter than the timeout is used as it is.
		timeouts = nil
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err = mustPipeline[int](t, o, resilience.Timeout(time.Second)).Do(ctx, hang)
		if err != context.DeadlineExceeded || errors.As(err, &te) || timeouts != nil {
			t.Errorf("caller's deadline: error %#v, timeouts %v; want context.DeadlineExceeded and no timeout of ours", err, timeouts)
		}
	})
}

func TestBulkhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bh := must(resilience.NewBulkhead("dep", resilience.BulkheadOptions{MaxConcurrent: 2, MaxQueue: 2}))
		p := mustPipeline[int](t, resilience.Options{Name: "dep"}, bh)
		release := map[int]chan struct{}{}
		for _, id := range []int{0, 1, 2, 3, 10, 11, 12, 99} {
			release[id] = make(chan struct{})
		}
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		call := func(id int) func(context.Context) (int, error) {
			return func(context.Context) (int, error) {
				mu.Lock()
				order = append(order, id)
				mu.Unlock()
				<-release[id]
				return id, nil
			}
		}
		for id := range 4 { // two run, two queue in order
			wg.Go(func() { p.Do(context.Background(), call(id)) })
			synctest.Wait()
		}
		if bh.InFlight() != 2 || bh.Queued() != 2 {
			t.Fatalf("in flight %d, queued %d; want 2, 2", bh.InFlight(), bh.Queued())
		}
		_, err := p.Do(context.Background(), call(99))
		var re *resilience.RejectedError
		if !errors.Is(err, resilience.ErrBulkheadFull) || !errors.As(err, &re) || re.Dependency != "dep" || re.Limit != 2 {
			t.Errorf("fifth call: %v, want ErrBulkheadFull for dep", err)
		}
		// A queued call whose context ends leaves the queue.
		ctx, cancel := context.WithCancel(context.Background())
		bh2 := must(resilience.NewBulkhead("dep", resilience.BulkheadOptions{MaxConcurrent: 1, MaxQueue: 1, MaxWait: time.Second}))
		p2 := mustPipeline[int](t, resilience.Options{}, bh2)
		wg.Go(func() { p2.Do(context.Background(), call(10)) })
		synctest.Wait()
		errs := make(chan error, 1)
		go func() { _, err := p2.Do(ctx, call(11)); errs <- err }()
		synctest.Wait()
		cancel()
		if err := <-errs; err != context.Canceled || bh2.Queued() != 0 {
			t.Errorf("cancelled while queued: %v, queued %d; want context.Canceled, 0", err, bh2.Queued())
		}
		// MaxWait bounds the wait.
		start := time.Now()
		if _, err := p2.Do(context.Background(), call(12)); !errors.Is(err, resilience.ErrBulkheadFull) || time.Since(start) != time.Second {
			t.Errorf("MaxWait: %v after %v; want ErrBulkheadFull after 1s", err, time.Since(start))
		}
		for _, id := range []int{1, 0, 2, 3, 10} { // the queue is first in, first out
			close(release[id])
			synctest.Wait()
		}
		wg.Wait()
		if diff := cmp.Diff([]int{0, 1, 10, 2, 3}, order); diff != "" {
			t.Errorf("order of calls (-want +got):\n%s", diff)
		}
		if bh.InFlight() != 0 || bh2.InFlight() != 0 {
			t.Errorf("slots held after the calls: %d, %d", bh.InFlight(), bh2.InFlight())
		}
	})
}

func TestRateLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rl := must(resilience.NewRateLimiter("dep", resilience.RateLimiterOptions{Rate: 10, Burst: 3}))
		p := mustPipeline[int](t, resilience.Options{Name: "dep"}, rl)
		results := func(n int) string {
			s := ""
			for range n {
				_, err := p.Do(context.Background(), ok)
				switch {
				case err == nil:
					s += "+"
				case errors.Is(err, resilience.ErrRateLimited):
					s += "-"
				default:
					t.Fatal(err)
				}
			}
			return s
		}
		if got := results(5); got != "+++--" {
			t.Errorf("burst: %s, want +++--", got)
		}
		time.Sleep(100 * time.Millisecond)
		if got := results(2); got != "+-" {
			t.Errorf("after one interval: %s, want +-", got)
		}
		time.Sleep(time.Second)
		if got := results(4); got != "+++-" {
			t.Errorf("after a quiet second: %s, want +++-", got)
		}

		// With MaxWait, calls wait for their turn: one every 100ms.
		rl = must(resilience.NewRateLimiter("dep", resilience.RateLimiterOptions{Rate: 10, MaxWait: 250 * time.Millisecond}))
		p = mustPipeline[int](t, resilience.Options{Name: "dep"}, rl)
		start := time.Now()
		var mu sync.Mutex
		var at []time.Duration
		var wg sync.WaitGroup
		var rejected atomic.Int32
		for range 5 {
			wg.Go(func() {
				_, err := p.Do(context.Background(), func(context.Context) (int, error) {
					mu.Lock()
					at = append(at, time.Since(start))
					mu.Unlock()
					return 0, nil
				})
				if errors.Is(err, resilience.ErrRateLimited) {
					rejected.Add(1)
				}
			})
		}
		wg.Wait()
		want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond}
		// A call cancelled while it waits gives its turn back.
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		before := time.Now()
		if _, err := p.Do(ctx, ok); err != context.Canceled {
			t.Errorf("cancelled while waiting: %v", err)
		}
		if _, err := p.Do(context.Background(), ok); err != nil || time.Since(before) != 100*time.Millisecond {
			t.Errorf("the next call: %v after %v; want its turn 100ms after the last, which the cancelled call gave back", err, time.Since(before))
		}
		if diff := cmp.Diff(want, at); diff != "" || rejected.Load() != 2 {
			t.Errorf("paced calls (-want +got):\n%s\nrejected %d, want 2", diff, rejected.Load())
		}
	})
}

func TestAdaptiveLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var changes []string
		al := must(resilience.NewAdaptiveLimiter("dep", resilience.AdaptiveOptions{InitialLimit: 4, MinLimit: 2, MaxLimit: 8, Backoff: 0.5,
			Hooks: resilience.Hooks{OnLimitChange: func(c resilience.LimitChange) {
				mu.Lock()
				changes = append(changes, fmt.Sprint(c.From, ">", c.To))
				mu.Unlock()
			}}}))
		p := mustPipeline[int](t, resilience.Options{Name: "dep"}, al)
		latency := 10 * time.Millisecond
		dep := func(context.Context) (int, error) { time.Sleep(latency); return 0, nil }
		burst := func(n int) (rejected int) {
			var wg sync.WaitGroup
			var r atomic.Int32
			for range n {
				wg.Go(func() {
					if _, err := p.Do(context.Background(), dep); errors.Is(err, resilience.ErrConcurrencyLimited) {
						r.Add(1)
					}
				})
			}
			wg.Wait()
			return int(r.Load())
		}
		if got := burst(6); got != 2 {
			t.Errorf("6 calls at limit 4: %d rejected, want 2", got)
		}
		// The admitted calls used at least half the limit at normal
		// latency: each raised it by one while that held.
		up := al.Limit()
		if up <= 4 || up > 8 {
			t.Errorf("limit %d after calls at normal latency, want 5..8", up)
		}
		latency = 50 * time.Millisecond // five times the baseline: congestion
		burst(2)
		if al.Limit() != max(up/4, 2) {
			t.Errorf("limit %d after two slow calls, want %d (halved twice, floored at 2)", al.Limit(), max(up/4, 2))
		}
		var want []string
		for l := 4; l < up; l++ {
			want = append(want, fmt.Sprint(l, ">", l+1))
		}
		want = append(want, fmt.Sprint(up, ">", max(up/2, 2)))
		if up/2 > 2 {
			want = append(want, fmt.Sprint(up/2, ">", max(up/4, 2)))
		}
		// Hooks of concurrent calls may run in any order.
		if diff := cmp.Diff(want, changes, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("limit changes (-want +got):\n%s", diff)
		}
	})
}

func TestHedge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hedges int
		p := mustPipeline[int](t, resilience.Options{Hooks: resilience.Hooks{OnHedge: func(context.Context, resilience.HedgeEvent) { hedges++ }}},
			resilience.Hedge{Delay: 50 * time.Millisecond, MaxHedges: 2})
		var n atomic.Int32
		var cancelled atomic.Int32
		start := time.Now()
		v, err := p.Do(context.Background(), func(ctx context.Context) (int, error) {
			if n.Add(1) == 1 { // the first attempt hangs
				<-ctx.Done()
				cancelled.Add(1)
				return 0, ctx.Err()
			}
			time.Sleep(10 * time.Millisecond)
			return 2, nil
		})
		if v != 2 || err != nil || time.Since(start) != 60*time.Millisecond || hedges != 1 || cancelled.Load() != 1 {
			t.Errorf("got %d, %v after %v with %d hedges, %d cancelled; want 2, nil after 60ms, 1 hedge, the first attempt cancelled",
				v, err, time.Since(start), hedges, cancelled.Load())
		}
		// A fast answer starts no hedge; a business answer is final.
		hedges = 0
		if v, err := p.Do(context.Background(), ok); v != 1 || err != nil || hedges != 0 {
			t.Errorf("fast call: %d, %v, %d hedges", v, err, hedges)
		}
		// All attempts failing: the last error, after every hedge ran.
		n.Store(0)
		_, err = p.Do(context.Background(), func(context.Context) (int, error) {
			n.Add(1)
			time.Sleep(200 * time.Millisecond)
			return 0, errDown
		})
		if err != errDown || n.Load() != 3 || hedges != 2 {
			t.Errorf("failing attempts: %v, %d attempts, %d hedges; want errDown, 3, 2", err, n.Load(), hedges)
		}
	})
}

// TestHedgeBudget: extra attempts draw from a budget; without room, the
// first attempt runs alone.
func TestHedgeBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget := must(resilience.NewBudget(resilience.BudgetOptions{Ratio: 0.5, NoFloor: true}))
		var rejected int
		p := mustPipeline[int](t, resilience.Options{Hooks: resilience.Hooks{OnReject: func(_ context.Context, r resilience.Rejection) { rejected++ }}},
			resilience.Hedge{Delay: 10 * time.Millisecond, Budget: budget})
		var attempts atomic.Int32
		slow := func(context.Context) (int, error) {
			attempts.Add(1)
			time.Sleep(time.Second)
			return 1, nil
		}
		for range 4 {
			p.Do(context.Background(), slow)
		}
		// Hedges allowed while hedges < 50% of calls: at calls 1 and 3.
		if calls, hedges := budget.Counts(); attempts.Load() != 6 || calls != 4 || hedges != 2 || rejected != 2 {
			t.Errorf("%d attempts, budget %d calls %d hedges, %d rejections; want 6, 4, 2, 2", attempts.Load(), calls, hedges, rejected)
		}
	})
}

func TestFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := must(resilience.NewBreaker("dep", resilience.BreakerOptions{WindowCalls: 2, MinCalls: 2}))
		var fallbacks []string
		o := resilience.Options{Name: "dep", Neutral: func(err error) bool { return errors.Is(err, errBusiness) },
			Hooks: resilience.Hooks{OnFallback: func(_ context.Context, e resilience.FallbackEvent) { fallbacks = append(fallbacks, e.Err.Error()) }}}
		stale := resilience.Fallback[int]{Func: func(ctx context.Context, err error) (int, error) { return -1, nil }}
		p := mustPipeline[int](t, o, stale, br)
		if _, err := p.Do(context.Background(), func(context.Context) (int, error) { return 0, errBusiness }); err != errBusiness {
			t.Errorf("business error: %v, want it unchanged", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := p.Do(ctx, hang); err != context.Canceled {
			t.Errorf("cancelled call: %v, want context.Canceled", err)
		}
		fail := func(context.Context) (int, error) { return 0, errDown }
		for range 3 {
			if v, err := p.Do(context.Background(), fail); v != -1 || err != nil {
				t.Errorf("got %d, %v; want the fallback's -1", v, err)
			}
		}
		want := []string{"connection refused", "connection refused", `resilience: circuit breaker for "dep" is open (probes in 30s)`}
		if diff := cmp.Diff(want, fallbacks); diff != "" {
			t.Errorf("fallbacks (-want +got):\n%s", diff)
		}
	})
}

var sortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })
