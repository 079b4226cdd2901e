package resilience_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fjord-data/fjord/resilience"
)

// TestHedgePanicReachesCaller: a panic in a hedged attempt is re-panicked
// on the caller's goroutine (after the other attempts were cancelled and
// have returned), as it is without hedging; it must not crash the process
// from the attempt's goroutine.
func TestHedgePanicReachesCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustPipeline[int](t, resilience.Options{}, resilience.Hedge{Delay: 10 * time.Millisecond})
		var n atomic.Int32
		var otherCancelled atomic.Bool
		fn := func(ctx context.Context) (int, error) {
			if n.Add(1) == 1 {
				<-ctx.Done()
				otherCancelled.Store(true)
				return 0, ctx.Err()
			}
			panic("boom")
		}
		got := func() (r any) {
			defer func() { r = recover() }()
			p.Do(context.Background(), fn)
			return nil
		}()
		if got != "boom" || !otherCancelled.Load() {
			t.Errorf("recovered %v, other attempt cancelled %v; want boom on the caller's goroutine and the other attempt cancelled", got, otherCancelled.Load())
		}
	})
}

// TestHedgeLoserSuccessBodyClosed: when both hedged attempts succeed, the
// response of the one that lost is closed (RoundTripper contract: the
// caller closes every body it is given).
func TestHedgeLoserSuccessBodyClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var bodies []*closeRecorder
		var n atomic.Int32
		release := make(chan struct{})
		rt := rtFunc(func(r *http.Request) (*http.Response, error) {
			first := n.Add(1) == 1
			if first {
				<-release // answers (successfully) just after the hedge won
			}
			b := &closeRecorder{Reader: strings.NewReader("ok")}
			mu.Lock()
			bodies = append(bodies, b)
			mu.Unlock()
			if !first {
				close(release)
			}
			return &http.Response{StatusCode: 200, Body: b, Request: r}, nil
		})
		tr := must(resilience.NewTransport(rt, resilience.TransportOptions{}, resilience.Hedge{Delay: 10 * time.Millisecond}))
		req, _ := http.NewRequest("GET", "http://dep.example/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		if len(bodies) != 2 {
			t.Fatalf("%d attempts answered, want 2", len(bodies))
		}
		for i, b := range bodies {
			if !b.closed {
				t.Errorf("body of attempt %d not closed", i+1)
			}
		}
	})
}

// TestHedgeLoserPanicReachesCaller: a loser's panic is not swallowed
// because another attempt answered first.
func TestHedgeLoserPanicReachesCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustPipeline[int](t, resilience.Options{}, resilience.Hedge{Delay: 10 * time.Millisecond})
		var n atomic.Int32
		fn := func(ctx context.Context) (int, error) {
			if n.Add(1) == 1 {
				<-ctx.Done()
				panic("late boom")
			}
			return 2, nil
		}
		got := func() (r any) {
			defer func() { r = recover() }()
			p.Do(context.Background(), fn)
			return nil
		}()
		if got != "late boom" {
			t.Errorf("recovered %v, want the loser's panic", got)
		}
	})
}
