package resilience_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fjord-data/fjord/resilience"
)

// TestHalfOpenAdmitsExactlyTheProbes: however many calls race for a
// half-open breaker, exactly HalfOpenProbes get through.
func TestHalfOpenAdmitsExactlyTheProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := must(resilience.NewBreaker("dep", resilience.BreakerOptions{WindowCalls: 2, MinCalls: 2, HalfOpenProbes: 3, OpenFor: time.Second}))
		p := mustPipeline[int](t, resilience.Options{}, br)
		for range 2 {
			p.Do(context.Background(), func(context.Context) (int, error) { return 0, errDown })
		}
		time.Sleep(time.Second)
		release := make(chan struct{})
		var admitted, rejected atomic.Int32
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				_, err := p.Do(context.Background(), func(context.Context) (int, error) {
					admitted.Add(1)
					<-release
					return 1, nil
				})
				if errors.Is(err, resilience.ErrOpen) {
					rejected.Add(1)
				}
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		if admitted.Load() != 3 || rejected.Load() != 97 || br.State() != resilience.StateClosed {
			t.Errorf("%d admitted, %d rejected, breaker %v; want 3, 97, closed", admitted.Load(), rejected.Load(), br.State())
		}
	})
}

// TestBulkheadUnderLoad: many goroutines on real time never exceed the
// limit, and every call either runs or is refused.
func TestBulkheadUnderLoad(t *testing.T) {
	bh := must(resilience.NewBulkhead("dep", resilience.BulkheadOptions{MaxConcurrent: 4, MaxQueue: 8}))
	p := mustPipeline[int](t, resilience.Options{}, bh)
	var running, peak, ran, full atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 {
				_, err := p.Do(context.Background(), func(context.Context) (int, error) {
					n := running.Add(1)
					for {
						old := peak.Load()
						if n <= old || peak.CompareAndSwap(old, n) {
							break
						}
					}
					running.Add(-1)
					ran.Add(1)
					return 0, nil
				})
				if errors.Is(err, resilience.ErrBulkheadFull) {
					full.Add(1)
				} else if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if peak.Load() > 4 || ran.Load()+full.Load() != 16*200 || bh.InFlight() != 0 || bh.Queued() != 0 {
		t.Errorf("peak %d, ran %d + refused %d, left %d in flight %d queued; want peak ≤ 4, 3200 calls, none left",
			peak.Load(), ran.Load(), full.Load(), bh.InFlight(), bh.Queued())
	}
}

// TestPanicReleases: a panicking call gives back its bulkhead slot, its
// adaptive-limit slot and its half-open probe, and counts as a failure.
func TestPanicReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := must(resilience.NewBreaker("dep", resilience.BreakerOptions{WindowCalls: 1, MinCalls: 1, HalfOpenProbes: 1, OpenFor: time.Second}))
		bh := must(resilience.NewBulkhead("dep", resilience.BulkheadOptions{MaxConcurrent: 1}))
		al := must(resilience.NewAdaptiveLimiter("dep", resilience.AdaptiveOptions{InitialLimit: 1, MaxLimit: 1}))
		p := mustPipeline[int](t, resilience.Options{}, bh, al, br)
		boom := func(context.Context) (int, error) { panic("boom") }
		call := func(fn func(context.Context) (int, error)) (err error) {
			defer func() {
				if recover() != nil {
					err = errors.New("panicked")
				}
			}()
			_, err = p.Do(context.Background(), fn)
			return err
		}
		if err := call(boom); err == nil || br.State() != resilience.StateOpen {
			t.Fatalf("panic: %v, breaker %v; want the panic, and open", err, br.State())
		}
		time.Sleep(time.Second)
		call(boom) // the probe panics: open again
		time.Sleep(time.Second)
		if err := call(ok); err != nil || br.State() != resilience.StateClosed || bh.InFlight() != 0 || al.InFlight() != 0 {
			t.Errorf("after panics: %v, breaker %v, bulkhead %d, adaptive %d in flight; want a success, closed, 0, 0",
				err, br.State(), bh.InFlight(), al.InFlight())
		}
	})
}

func TestPermit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := must(resilience.NewBreaker("dep", resilience.BreakerOptions{WindowCalls: 3, MinCalls: 3, SlowCall: time.Second, HalfOpenProbes: 1, OpenFor: time.Second}))
		p := mustPipeline[int](t, resilience.Options{}, br)
		if p.Breaker("anything") != br {
			t.Fatal("Pipeline.Breaker does not return the pipeline's breaker")
		}
		for _, report := range []func(resilience.Permit){resilience.Permit.Success, resilience.Permit.Neutral, resilience.Permit.Failure} {
			permit, err := br.Allow()
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second) // every call is slow
			report(permit)
		}
		if c, f, s := br.Counts(); c != 2 || f != 1 || s != 2 {
			t.Errorf("counts %d %d %d, want 2 calls (neutral not counted), 1 failure, 2 slow", c, f, s)
		}
		permit, _ := br.Allow()
		permit.Success() // a quick third call: 1 failure and 2 slow of 3, under both thresholds (50%, 100%)
		if br.State() != resilience.StateClosed {
			t.Errorf("state %v, want closed", br.State())
		}
		permit, _ = br.Allow()
		time.Sleep(2 * time.Second)
		permit.Failure() // the window slides to failure, success, failure: 2 of 3 ≥ 50%
		if _, err := br.Allow(); !errors.Is(err, resilience.ErrOpen) {
			t.Errorf("Allow on an open breaker: %v, want ErrOpen", err)
		}
	})
}
