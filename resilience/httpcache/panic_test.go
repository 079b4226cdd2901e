package httpcache_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fjord-data/fjord/resilience/httpcache"
)

// TestUpstreamPanic: a panic of the upstream RoundTripper during a request
// the cache makes on its own goroutine reaches the caller waiting for it
// (re-panicked with the same value, as without the cache), and a panic in
// a background refresh, which nobody waits for, does not crash the
// process; the flight is cleaned up either way.
func TestUpstreamPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 || n == 3 {
				panic("upstream boom")
			}
			versioned("max-age=1, stale-while-revalidate=60")(w, r, n)
		}}
		c := httpcache.New(o, nil)
		defer c.Close()
		got := func() (r any) {
			defer func() { r = recover() }()
			c.RoundTrip(httptest.NewRequest("GET", "http://svc.test/a", nil))
			return nil
		}()
		if got != "upstream boom" {
			t.Fatalf("miss: recovered %v, want the upstream's panic", got)
		}
		if r := do(t, c, o, "GET", "http://svc.test/a", nil); r.Status != "miss" || r.Body != "v2" {
			t.Fatalf("after the panic: %+v, want a miss answered by a new upstream request", r)
		}
		time.Sleep(2 * time.Second)
		// Stale within stale-while-revalidate: served, refreshed in the
		// background; that refresh (request 3) panics.
		if r := do(t, c, o, "GET", "http://svc.test/a", nil); r.Status != "stale" || r.Body != "v2" {
			t.Fatalf("stale: %+v", r)
		}
		if r := do(t, c, o, "GET", "http://svc.test/a", nil); r.Status != "stale" || r.Calls != 4 {
			t.Fatalf("after the failed background refresh: %+v, want stale and a new refresh", r)
		}
	})
}
