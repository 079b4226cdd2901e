package httpcache_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fjord-data/fjord/resilience/httpcache"
)

// benchHit measures answering a GET from a fresh stored 1 KiB response,
// including building the response and reading its body.
func benchHit(b *testing.B, header http.Header) {
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Etag", `"v1"`)
		w.Write(make([]byte, 1024))
	}}
	c := httpcache.New(o, nil)
	defer c.Close()
	req := httptest.NewRequest("GET", "http://svc.test/items/1?expand=price", nil)
	req.Header = header
	resp, err := c.RoundTrip(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	if o.count() != 1 {
		b.Fatalf("upstream calls = %d, want 1", o.count())
	}
}

func BenchmarkHit(b *testing.B) { benchHit(b, http.Header{"Accept": {"application/json"}}) }

func BenchmarkHitAuthorization(b *testing.B) {
	benchHit(b, http.Header{"Accept": {"application/json"}, "Authorization": {"Bearer 0123456789abcdef0123456789abcdef"}})
}

func BenchmarkParseCacheControl(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		httpcache.ParseCacheControl("public, max-age=600, stale-while-revalidate=30, stale-if-error=86400")
	}
}
