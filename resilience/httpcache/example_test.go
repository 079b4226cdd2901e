package httpcache_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/fjord-data/fjord/resilience/httpcache"
)

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func Example() {
	calls := 0
	upstream := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		rec := httptest.NewRecorder()
		rec.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(rec, `{"id":42,"call":%d}`, calls)
		return rec.Result(), nil
	})
	cache := httpcache.New(upstream, nil)
	defer cache.Close()
	client := &http.Client{Transport: cache}
	for range 2 {
		resp, err := client.Get("http://catalog.internal/items/42")
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Header.Get("X-Fjord-Cache"), string(body))
	}
	// Output:
	// miss {"id":42,"call":1}
	// hit {"id":42,"call":1}
}

func ExampleCache_Fallback() {
	down := false
	upstream := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if down {
			return nil, errors.New("connection refused")
		}
		rec := httptest.NewRecorder()
		rec.Header().Set("Cache-Control", "max-age=0") // stale at once
		rec.Header().Set("Etag", `"v1"`)
		io.WriteString(rec, "catalog v1")
		return rec.Result(), nil
	})
	cache := httpcache.New(upstream, nil)
	defer cache.Close()
	req := httptest.NewRequest("GET", "http://catalog.internal/items", nil)
	resp, _ := cache.RoundTrip(req)
	resp.Body.Close()

	down = true
	fallback := cache.Fallback(10 * time.Minute) // copies up to 10 minutes old
	_, err := cache.RoundTrip(req)
	resp, err = fallback(req, err) // what a breaker's fallback policy would do
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Header.Get("X-Fjord-Cache"), string(body))
	// Output: fallback catalog v1
}
