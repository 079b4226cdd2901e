package resilience_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fjord-data/fjord/resilience"
	"github.com/fjord-data/fjord/resilience/httpcache"
)

// dependency is a real HTTP server on loopback whose health the test
// switches: up, down (503), slow (answers only after the caller gave up).
type dependency struct {
	mode atomic.Value // "up", "down", "slow"
	hits atomic.Int64
}

func (d *dependency) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.hits.Add(1)
	switch d.mode.Load() {
	case "down":
		http.Error(w, "down", http.StatusServiceUnavailable)
	case "slow":
		<-r.Context().Done() // the client's attempt timeout ends it
	default: // stored by the cache (it has a validator) and revalidated on every call
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("ETag", `"v1"`)
		fmt.Fprint(w, "fresh "+r.URL.Path)
	}
}

// phase counts what the callers saw during one phase.
type phase struct {
	calls, fresh, stale, failed, reached int64
	halfOpens                            int64
}

// TestFailureScenario: a dependency goes down, then slow, then recovers,
// under concurrent load through the full pipeline. The assertions are on
// counts and states: callers never see the outage (stale answers), at
// most 1% of their calls wait on the failing dependency (so their p99 is
// the breaker's fast-fail time), the dependency gets only the trip window
// and the half-open probes, retries add at most the budget, and the
// breaker closes after the recovery.
func TestFailureScenario(t *testing.T) {
	dep := &dependency{}
	dep.mode.Store("up")
	srv := httptest.NewServer(dep)
	defer srv.Close()
	base := &http.Transport{MaxIdleConnsPerHost: 16}
	defer base.CloseIdleConnections()

	var halfOpens, retries atomic.Int64
	hooks := resilience.Hooks{
		OnStateChange: func(c resilience.StateChange) {
			if c.To == resilience.StateHalfOpen {
				halfOpens.Add(1)
			}
		},
		OnRetry: func(context.Context, resilience.RetryEvent) { retries.Add(1) },
	}
	const probes = 3
	budget := must(resilience.NewBudget(resilience.BudgetOptions{Ratio: 0.1, MinPerSecond: 1}))
	breaker := must(resilience.NewBreaker("dep", resilience.BreakerOptions{WindowCalls: 20, MinCalls: 10, SlowCall: 50 * time.Millisecond,
		SlowCallRate: 0.5, OpenFor: 100 * time.Millisecond, HalfOpenProbes: probes, Hooks: hooks}))
	bulkhead := must(resilience.NewBulkhead("dep", resilience.BulkheadOptions{MaxConcurrent: 16, MaxQueue: 16}))
	// The HTTP cache sits below the policies: every call goes through the
	// breaker, and an open breaker is answered with the cache's stale copy.
	// Its upstream requests are bounded like the attempts, since they run
	// detached from the callers' cancellation.
	cache := httpcache.New(base, &httpcache.Options{RefreshTimeout: 100 * time.Millisecond})
	defer cache.Close()
	tr := must(resilience.NewTransport(cache, resilience.TransportOptions{Options: resilience.Options{Name: "dep", Hooks: hooks}},
		cache.FallbackPolicy(time.Hour),
		resilience.Timeout(2*time.Second),
		resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, Budget: budget},
		bulkhead, breaker,
		resilience.Timeout(100*time.Millisecond)))
	client := &http.Client{Transport: tr}

	const workers, perWorker = 8, 300
	run := func(mode string, until func() bool) phase {
		dep.mode.Store(mode)
		hits0, halfOpens0 := dep.hits.Load(), halfOpens.Load()
		var p phase
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				tick := time.NewTicker(500 * time.Microsecond) // paced load
				defer tick.Stop()
				for i := 0; i < perWorker || (until != nil && !until() && i < 100*perWorker); i++ {
					<-tick.C
					url := fmt.Sprintf("%s/item/%d", srv.URL, (w*perWorker+i)%10)
					atomic.AddInt64(&p.calls, 1)
					resp, err := client.Get(url)
					if err != nil {
						atomic.AddInt64(&p.failed, 1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode == 200 && resp.Header.Get(httpcache.DefaultStatusHeader) == string(httpcache.StatusFallback):
						atomic.AddInt64(&p.stale, 1)
					case resp.StatusCode == 200:
						atomic.AddInt64(&p.fresh, 1)
					default:
						atomic.AddInt64(&p.failed, 1)
					}
				}
			})
		}
		wg.Wait()
		p.reached, p.halfOpens = dep.hits.Load()-hits0, halfOpens.Load()-halfOpens0
		t.Logf("%-5s %+v breaker %v", mode, p, breaker.State())
		return p
	}

	up := run("up", nil)
	if up.fresh != up.calls || breaker.State() != resilience.StateClosed {
		t.Fatalf("healthy dependency: %+v, breaker %v", up, breaker.State())
	}
	var outage phase
	for _, mode := range []string{"down", "slow"} {
		p := run(mode, nil)
		if p.failed != 0 || p.fresh+p.stale != p.calls {
			t.Errorf("%s: %d of %d calls failed; want every call answered, stale from the cache", mode, p.failed, p.calls)
		}
		// Only the trip window (up to MinCalls failures plus the calls in
		// flight) and the probes of each half-open period reach the
		// dependency; a retry after a failed probe finds the breaker
		// open again.
		if limit := 20 + workers + probes*p.halfOpens; p.reached > limit {
			t.Errorf("%s: the dependency got %d requests, want at most %d (trip window + %d half-open periods × %d probes)",
				mode, p.reached, limit, p.halfOpens, probes)
		}
		outage.calls += p.calls
		outage.reached += p.reached
	}
	// p99 of the callers = the fast-fail time: at most 1% of the calls
	// during the outage waited on the dependency.
	if outage.reached*100 > outage.calls {
		t.Errorf("%d of %d calls during the outage reached the dependency, want at most 1%%", outage.reached, outage.calls)
	}
	recovered := run("up", func() bool { return breaker.State() == resilience.StateClosed })
	if breaker.State() != resilience.StateClosed || recovered.fresh == 0 || recovered.failed != 0 {
		t.Errorf("after recovery: breaker %v, %+v; want closed, fresh answers, no failures", breaker.State(), recovered)
	}
	// Retry amplification: attempts per call stay near 1; the budget
	// bounds retries to 10% of calls plus its floor of 1/s over 10s.
	calls := up.calls + outage.calls + recovered.calls
	attempts := dep.hits.Load()
	if n := retries.Load(); n > calls/10+10 || attempts > calls+n {
		t.Errorf("%d calls made %d attempts with %d retries; want at most %d retries", calls, attempts, n, calls/10+10)
	}
	if amp := float64(attempts) / float64(attempts-retries.Load()); amp > 1.1 {
		t.Errorf("retry amplification %.3f (attempts per call that reached the dependency), want at most 1.1", amp)
	}
}
