package httpcache_test

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestRevalidationWithoutDate: a 304 without a Date field freshens the
// stored response as of its arrival (RFC 9110 section 6.6.1: a cache adds
// the Date of receipt), instead of keeping the old Date, which made the
// response stale again at once and every request revalidate.
func TestRevalidationWithoutDate(t *testing.T) {
	scenario(t, nil, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Etag", `"v"`)
		w.Header().Set("Cache-Control", "max-age=10")
		if r.Header.Get("If-None-Match") != "" {
			w.Header().Del("Date")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, "body")
	}, nil, []step{
		{want: result{Code: 200, Status: "miss", Body: "body", Calls: 1}},
		{wait: 30 * time.Second, want: result{Code: 200, Status: "revalidated", Body: "body", Calls: 2}},
		{wait: 5 * time.Second, want: result{Code: 200, Status: "hit", Body: "body", Calls: 2}},
	})
}

// TestRevalidationResetsAge: a 304 without an Age field was validated by
// the origin just now (RFC 9111 section 5.1); the stored response's Age,
// which described the original delivery, must not age the freshened one.
func TestRevalidationResetsAge(t *testing.T) {
	scenario(t, nil, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Etag", `"v"`)
		w.Header().Set("Cache-Control", "max-age=120")
		if r.Header.Get("If-None-Match") != "" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Age", "100") // from an intermediary cache
		io.WriteString(w, "body")
	}, nil, []step{
		{want: result{Code: 200, Status: "miss", Body: "body", Calls: 1}},
		{wait: 25 * time.Second, want: result{Code: 200, Status: "revalidated", Body: "body", Calls: 2}},
		{wait: 30 * time.Second, want: result{Code: 200, Status: "hit", Body: "body", Calls: 2}},
	})
}
